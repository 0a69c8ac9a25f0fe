-- Notes and document metadata can be edited (PATCH /api/notes/{noteId},
-- PATCH /api/documents/{documentId}): who edited last and when, NULL
-- until the first edit (the author and creation time stay as they were).
ALTER TABLE customer_notes
    ADD COLUMN updated_at timestamptz,
    ADD COLUMN updated_by text;

ALTER TABLE documents
    ADD COLUMN updated_at timestamptz,
    ADD COLUMN updated_by text;

-- the administrators' lists across customers, newest first
CREATE INDEX customer_notes_created_idx
    ON customer_notes (created_at DESC, id DESC);
CREATE INDEX documents_created_idx ON documents (created_at DESC, id DESC);
