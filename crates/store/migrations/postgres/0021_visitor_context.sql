-- Where a visitor is chatting from, for the agent's side panel: the host
-- page (scheme, host and path only; the widget drops query and fragment,
-- and the server again) and the browser's User-Agent, both as last seen.
ALTER TABLE visitors ADD COLUMN page_url TEXT;
ALTER TABLE visitors ADD COLUMN browser TEXT;
