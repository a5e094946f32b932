// Package notify mails the secure link of an approved support ticket to
// the requester's contact address, when the server is given a mail
// server (vigil serve --smtp-url).
//
// The pieces:
//
//   - ParseURL reads --smtp-url: smtp://[user:pass@]host[:587] (STARTTLS
//     required, unless the host is loopback, where it is used when
//     offered, or ?starttls=off is given) or smtps://[user:pass@]host[:465]
//     (implicit TLS), with ?from=ADDRESS. Settings.String is the URL with
//     its password redacted: the only form logs and errors show.
//   - Mailer.SendLink seals the message (it holds the link's token, a
//     secret) under a key derived from the installation's seal key and
//     queues it (Queue, a River job in internal/jobs): approval never
//     waits for, or fails with, the mail server.
//   - Mailer.Deliver is the job's work: it opens the sealed message,
//     writes it (text/plain, UTF-8, quoted-printable; Date, Message-ID and
//     Auto-Submitted headers; the subject and addresses encoded so that
//     user data cannot add headers) and sends it with go-mail through the
//     dialer it was given (the server's outbound policy). A failure is
//     retried by the queue with backoff; a refusal the mail server says is
//     permanent (5xx) is not (ErrUndeliverable). The outcome lands in the
//     ticket's history (History: "mailed", or "mail_failed" once no
//     attempt is left).
//
// The token never sits in clear in the job table: the job's arguments are
// an HMAC of the recipient and URL (so a link mailed twice is queued once)
// and the sealed message, bound to that key.
package notify
