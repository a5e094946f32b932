package licensing

// Limits of Page.Limit.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// Page asks for one page of a list that grows at its end (oldest first):
// at most Limit items (0 means DefaultPageLimit; more than MaxPageLimit is
// invalid) after the item that Cursor, returned with the previous page,
// points at. The cursor is opaque to clients.
type Page struct {
	Cursor string
	Limit  int
}
