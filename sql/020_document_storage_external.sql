-- A download reads a document in chunks (substring of the bytea).  Stored
-- uncompressed, a substring reads only the TOAST chunks it covers; stored
-- compressed, every chunk would decompress the value from its start, so a
-- download would cost time quadratic in the document's size.  Documents
-- are mostly compressed formats already (PDF, JPEG, PNG).  Applies to rows
-- written from now on; older rows are read correctly, only more slowly.
ALTER TABLE document_contents ALTER COLUMN content SET STORAGE EXTERNAL;
