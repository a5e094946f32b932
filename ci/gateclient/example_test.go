package gateclient_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/vigil-sec/vigil/ci/gateclient"
)

func ExampleClient_Wait() {
	c, err := gateclient.New(gateclient.Config{
		Server:       "https://vigil.example.com:8443",
		ClientID:     os.Getenv("VIGIL_CLIENT_ID"),
		ClientSecret: os.Getenv("VIGIL_CLIENT_SECRET"),
		Fingerprint:  os.Getenv("VIGIL_FINGERPRINT"), // as `vigil serve` printed it
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	a, err := c.Wait(context.Background(), gateclient.Query{Project: "app", Commit: "1a2b3c"}, 10*time.Minute,
		func(a *gateclient.Answer) { fmt.Fprintln(os.Stderr, "still", a.Decision) })
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(a.Decision)
	for _, r := range a.Reasons {
		fmt.Printf("  - %s: %s\n", r.Code, r.Message)
	}
}
