package notify_test

import (
	"fmt"

	"github.com/vigil-sec/vigil/reports/notify"
)

// ExampleParseURL reads --smtp-url; logs and errors show it redacted.
func ExampleParseURL() {
	s, err := notify.ParseURL("smtp://reports:s3cret@mail.vendor.example?from=reports@vendor.example")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Addr(), s.TLS, s.From.Address)
	fmt.Println(s)

	_, err = notify.ParseURL("smtp://reports:s3cret@mail.vendor.example?starttls=off")
	fmt.Println(err)
	// Output:
	// mail.vendor.example:587 starttls reports@vendor.example
	// smtp://reports:xxxxx@mail.vendor.example:587?from=reports%40vendor.example
	// bad --smtp-url: starttls=off would send the password in clear to mail.vendor.example: use STARTTLS or smtps://
}
