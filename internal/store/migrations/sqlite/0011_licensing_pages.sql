-- The licensing lists are keyset-paginated on (created_at, id)
-- (store.listPage): one index range read a page, whatever its depth.
CREATE INDEX licensing_tenants_page ON licensing_tenants (created_at, id);
CREATE INDEX licensing_products_page ON licensing_products (created_at, id);
CREATE INDEX licensing_entitlements_page ON licensing_entitlements (created_at, id);
CREATE INDEX licensing_entitlements_tenant_page ON licensing_entitlements (tenant_id, created_at, id);
