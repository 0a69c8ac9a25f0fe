"""Stand-ins for the Auth, Order, Complaint and Notification services
(local use only).

    python3 server.py auth|orders|complaints|notifications [PORT [ADDRESS]]

One program for both local set-ups: docker/compose.yaml runs it in
containers (listening on every address, the default), scripts/run.sh
(`make run`) runs it once per service on 127.0.0.1. Standard library only, so
Debian 12's python3 runs it as it is.

Answers what ngx_http_customer_module calls, as the real services would:

    auth:       PATCH /api/auth/user/{userId}/status  -> 200
                GET /api/auth/user/{userId} -> 200 {"success": true,
                   "data": {userId, email, fullName, contactNumber}}:
                   every user exists, with made-up data
    orders:     GET /api/orders?customerId=&status=&page=&limit=
    complaints: GET /api/complaints?customerId=&status=&page=&limit=
                -> 200 {"success": true, "data": {"orders"|"complaints":
                   [...], "pagination": {currentPage, totalPages,
                   totalItems, itemsPerPage}}}
    notifications: POST /events (or /api/notifications/events), a
                CloudEvents 1.0 JSON event -> 200 {"success": true,
                   "data": {"id": <the event's id>}}; a body that is no
                   event (no id or type) -> 400

and GET /health -> 200 on each. Anything else is a JSON 404.

Every customer has a few orders and complaints, made up from its
customerId (the same ones on every run, whatever the customer): two to
four orders, Delivered or Cancelled, and one or two complaints, Resolved
or Closed. None is active or open, so the API's DELETE guard (it asks
for status=active orders) lets a customer go. `status=active` matches
Pending, Processing and Shipped orders, `status=open` Open and In
Progress complaints; any other status matches by name.

Every request is logged to stdout (method, path, body, whether a service
key came), so `docker compose logs auth` or make run's terminal shows
what the API sent.
"""

import datetime
import hashlib
import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DEFAULT_PORTS = {"auth": 3001, "orders": 8002, "complaints": 8003,
                 "notifications": 3004}

# the statuses a "status=active" / "status=open" filter matches
ACTIVE = {"orders": {"pending", "processing", "shipped"},
          "complaints": {"open", "in progress"}}

SUBJECTS = ["Late delivery", "Damaged packaging", "Wrong item sent",
            "Refund not received", "Rude support call", "Missing invoice"]

# the made-up history ends here, so it does not move from day to day
HISTORY_END = datetime.datetime(2026, 1, 31, 12, 0, 0,
                                tzinfo=datetime.timezone.utc)


def positive_int(value, default):
    try:
        n = int(value)
    except (TypeError, ValueError):
        return default
    return n if n > 0 else default


def stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def amount(a, b):
    """100.01 to 4,999.99, always written with two decimals."""
    cents = 1 + b % 99
    if cents % 10 == 0:
        cents += 1
    return (100 + (a << 8 | b) % 4900) + cents / 100


def history(role, customer_id):
    """The customer's orders or complaints, newest first."""
    h = hashlib.sha256(customer_id.encode("utf-8", "replace")).digest()
    serial = int.from_bytes(h[:3], "big")
    items = []

    if role == "orders":
        for i in range(2 + h[3] % 3):
            t = HISTORY_END - datetime.timedelta(
                days=10 + 40 * i + h[4 + i] % 30, minutes=h[8 + i] * 5)
            items.append({
                "orderId": "ORD-%d-%06d" % (t.year, (serial + i) % 1000000),
                "orderDate": stamp(t),
                "status": "Cancelled" if h[12 + i] % 5 == 0 else "Delivered",
                "totalAmount": amount(h[16 + i], h[20 + i]),
                "itemCount": 1 + h[24 + i] % 5,
            })
    else:
        for i in range(1 + h[3] % 2):
            t = HISTORY_END - datetime.timedelta(
                days=5 + 60 * i + h[4 + i] % 30, minutes=h[8 + i] * 5)
            items.append({
                "complaintId": "CMP-%d-%06d" % (t.year,
                                                (serial + i) % 1000000),
                "subject": SUBJECTS[h[12 + i] % len(SUBJECTS)],
                "status": "Closed" if h[16 + i] % 3 == 0 else "Resolved",
                "priority": 1 + h[20 + i] % 3,
                "createdAt": stamp(t),
            })

    return items


def matches(role, item, status):
    if not status:
        return True
    s = item["status"].lower()
    want = status.lower()
    if want in ("active", "open"):
        return s in ACTIVE[role]
    return s == want


class Handler(BaseHTTPRequestHandler):
    # keep-alive: nginx's upstream keepalive reuses connections
    protocol_version = "HTTP/1.1"
    server_version = "customer-peer"
    role = "orders"

    def _answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self):
        length = positive_int(self.headers.get("Content-Length"), 0)
        return self.rfile.read(length) if length else b""

    def _list(self, args):
        def first(name):
            return args.get(name, [""])[0]

        page = positive_int(first("page"), 1)
        limit = min(positive_int(first("limit"), 10), 100)
        customer = first("customerId")
        items = [item for item in (history(self.role, customer)
                                   if customer else [])
                 if matches(self.role, item, first("status"))]
        return self._answer(200, {
            "success": True,
            "data": {self.role: items[(page - 1) * limit:page * limit],
                     "pagination": {"currentPage": page,
                                    "totalPages": -(-len(items) // limit),
                                    "totalItems": len(items),
                                    "itemsPerPage": limit}}})

    def _handle(self):
        url = urlsplit(self.path)
        body = self._body()
        sys.stdout.write("%s %s %s %s key=%s%s\n" % (
            self.role, self.command, self.path,
            body.decode("utf-8", "replace"),
            "yes" if self.headers.get("X-Service-API-Key") else "no",
            " signed=%s" % ("yes" if self.headers.get("webhook-signature")
                            else "no")
            if self.role == "notifications" else ""))
        sys.stdout.flush()
        parts = [p for p in url.path.split("/") if p]

        if self.command in ("GET", "HEAD") and url.path == "/health":
            return self._answer(200, {"success": True, "service": self.role})

        if (self.role == "auth" and self.command == "PATCH"
                and len(parts) == 5 and parts[:3] == ["api", "auth", "user"]
                and parts[4] == "status"):
            try:
                sent = json.loads(body or b"{}")
            except ValueError:
                sent = {}
            if not isinstance(sent, dict):
                sent = {}
            return self._answer(200, {
                "success": True,
                "message": "User status updated",
                "data": {"userId": parts[3],
                         "isActive": sent.get("isActive")}})

        if (self.role == "auth" and self.command in ("GET", "HEAD")
                and len(parts) == 4 and parts[:3] == ["api", "auth", "user"]):
            user = parts[3]
            return self._answer(200, {
                "success": True,
                "data": {"userId": user,
                         "email": "%s@example.com" % hashlib.sha256(
                             user.encode()).hexdigest()[:12],
                         "fullName": "User %s" % user[:40],
                         "contactNumber": None}})

        if (self.role == "notifications" and self.command == "POST"
                and parts in (["events"],
                              ["api", "notifications", "events"])):
            try:
                event = json.loads(body or b"{}")
            except ValueError:
                event = None
            if (not isinstance(event, dict) or not event.get("id")
                    or not event.get("type")):
                return self._answer(400, {"success": False,
                                          "message": "Not a CloudEvent"})
            return self._answer(200, {"success": True,
                                      "message": "Event received",
                                      "data": {"id": event["id"]}})

        if (self.role in ("orders", "complaints")
                and self.command in ("GET", "HEAD")
                and parts == ["api", self.role]):
            return self._list(parse_qs(url.query))

        return self._answer(404, {"success": False,
                                  "message": "Not found"})

    do_GET = do_HEAD = do_PATCH = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, fmt, *args):
        pass  # _handle logs instead


def stop(signum, frame):
    # as PID 1 in a container SIGTERM has no default action: exit here
    sys.exit(0)


def main():
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role not in DEFAULT_PORTS or len(sys.argv) > 4:
        sys.exit("usage: server.py auth|orders|complaints|notifications "
                 "[PORT [ADDRESS]]")
    port = int(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_PORTS[role]
    address = sys.argv[3] if len(sys.argv) > 3 else "0.0.0.0"
    Handler.role = role
    signal.signal(signal.SIGTERM, stop)
    try:
        server = ThreadingHTTPServer((address, port), Handler)
    except OSError as e:
        sys.exit("%s stand-in: cannot listen on %s:%d: %s"
                 % (role, address, port, e.strerror))
    print("%s stand-in on %s:%d" % (role, address, port), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
