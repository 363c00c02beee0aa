-- busted --helper for make check-memory: the collector at full pace, so a missing
-- reference or a use-after-free in the C core shows up under valgrind and ASan.
-- lua5.4's interpreter starts in generational mode; incremental with no pause
-- collects all the time.
if _VERSION == "Lua 5.4" then
  collectgarbage("incremental", 0, 1000)
else
  collectgarbage("setpause", 0)
  collectgarbage("setstepmul", 1000)
end
