-- Widget settings: theme colour, position, pre-chat fields, business hours
-- and the away message, as one JSON document checked by
-- palisade_model::WidgetSettings before it is written. NULL means the
-- defaults. The greeting stays in its own column.

ALTER TABLE widgets ADD COLUMN settings TEXT;
ALTER TABLE widgets ADD COLUMN settings_updated_at INTEGER;
