-- Macros shared by the Gold models (run once per connection before them).
--
-- gold_device_key: the stable key of a device profile, the first 16 hex digits
-- of SHA-256 over the JSON array [platform, device_type, device_family,
-- browser_family, os_family] (NULLs as null, so NULL and '' differ).
CREATE OR REPLACE TEMP MACRO gold_device_key(platform, device_type, device_family, browser_family, os_family) AS
  left(sha256(to_json([platform, device_type, device_family, browser_family, os_family])::VARCHAR), 16);
