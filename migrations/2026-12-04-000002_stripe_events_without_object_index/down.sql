CREATE INDEX stripe_events_object ON stripe_events (tenant_id, object_id);
