-- luacheck settings for the Redis scripts in persistence/lua/, checked one by
-- one with their includes resolved (tests/lint/luacheck.sh). Redis runs Lua
-- 5.1 with these libraries as read-only globals.
std = "lua51"
read_globals = {"redis", "KEYS", "ARGV", "cjson", "cmsgpack", "struct", "bit",
                "unpack"}
