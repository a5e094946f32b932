-- The requester's contact address on a ticket (package reports,
-- tickets.go): the e-mail address the secure link is mailed to when the
-- server sends mail (--smtp-url). NULL: none given. One address, checked
-- by the service (net/mail, at most 254 bytes, no control characters).
ALTER TABLE tickets ADD COLUMN contact TEXT;
