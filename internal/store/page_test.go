package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
)

// TestListPages pages through products (caller-chosen IDs, so the order
// is the creation order, not the IDs') and a tenant's entitlements, with
// items added while paging.
func TestListPages(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dialect)

		var want []string
		for i := range 7 {
			id := fmt.Sprintf("prod-%c", 'z'-i) // descending IDs
			if _, err := db.CreateProduct(ctx, licensing.Product{ID: id, Name: id}); err != nil {
				t.Fatal(err)
			}
			want = append(want, id)
		}
		var got []string
		p := licensing.Page{Limit: 3}
		for pages := 0; ; pages++ {
			ps, next, err := db.ListProducts(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) > 3 {
				t.Fatalf("page of %d items, want at most 3", len(ps))
			}
			for _, x := range ps {
				got = append(got, x.ID)
			}
			if pages == 0 { // an item added while paging comes last
				if _, err := db.CreateProduct(ctx, licensing.Product{ID: "prod-0", Name: "late"}); err != nil {
					t.Fatal(err)
				}
				want = append(want, "prod-0")
			}
			if next == "" {
				break
			}
			p.Cursor = next
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("paged products = %v, want %v (creation order, each once)", got, want)
		}

		// A tenant filter pages within the tenant.
		t1, err := db.CreateTenant(ctx, licensing.Tenant{Name: "one"})
		if err != nil {
			t.Fatal(err)
		}
		t2, err := db.CreateTenant(ctx, licensing.Tenant{Name: "two"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			for _, tn := range []licensing.Tenant{t1, t2} {
				e := licensing.StoredEntitlement{TenantID: tn.ID, ProductID: "prod-z", Seats: 1, Lease: time.Hour, Features: "{}", CodeHash: fmt.Sprintf("%s-%d", tn.ID, i)}
				if _, err := db.CreateEntitlement(ctx, e); err != nil {
					t.Fatal(err)
				}
			}
		}
		es, next, err := db.ListEntitlements(ctx, t1.ID, licensing.Page{Limit: 4})
		if err != nil || len(es) != 4 || next == "" {
			t.Fatalf("first page = %d items, next %q, %v; want 4 and a cursor", len(es), next, err)
		}
		es2, next2, err := db.ListEntitlements(ctx, t1.ID, licensing.Page{Limit: 4, Cursor: next})
		if err != nil || len(es2) != 1 || next2 != "" {
			t.Fatalf("second page = %d items, next %q, %v; want the last one and no cursor", len(es2), next2, err)
		}
		for _, e := range append(es, es2...) {
			if e.TenantID != t1.ID {
				t.Fatalf("entitlement of tenant %s in tenant %s's list", e.TenantID, t1.ID)
			}
		}
		all, _, err := db.ListEntitlements(ctx, "", licensing.Page{})
		if err != nil || len(all) != 10 {
			t.Fatalf("all entitlements = %d, %v; want 10", len(all), err)
		}

		// Bad input is ErrInvalid and names it.
		for _, bad := range []licensing.Page{{Limit: -1}, {Limit: licensing.MaxPageLimit + 1}, {Cursor: "%%%"}, {Cursor: "bm8tc3VjaC1pZA"}} {
			if _, _, err := db.ListTenants(ctx, bad); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("ListTenants(%+v) error = %v, want ErrInvalid", bad, err)
			}
		}
	})
}
