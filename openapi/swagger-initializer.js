// Swagger UI at /docs/: scripts/swagger.sh copies this file over the
// package's own swagger-initializer.js. It loads the API document that
// nginx serves from openapi/openapi.json, and asks no outside host (no
// validator badge).
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout"
  });
};
