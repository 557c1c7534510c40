-- spate's lease grant, run atomically by Redis. Its arguments, result and algorithm are
-- documented with GRANT_SCRIPT in lease.rs.
local key = KEYS[1]
local want = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local me = ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nowstr = string.format('%d', now)
-- A call its client has given up on (Redis was stopped while it waited, and runs it now) grants
-- nothing: the client is not there to use it, and the window would lose it.
local expires = tonumber(ARGV[7] or '0')
if expires > 0 and now > expires then
  return {0, 0, 0, 0, nowstr}
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now - window))
-- Oldest first: member, score, member, score...
local members = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
local least = tonumber(ARGV[6])
local used = 0
local seen = {}
local instances = 0
for i = 1, #members, 2 do
  local n, inst = string.match(members[i], '^(%d+):([^:]+):')
  if n then
    used = used + tonumber(n)
    if not seen[inst] then
      seen[inst] = true
      instances = instances + 1
    end
  end
end
if not seen[me] then
  instances = instances + 1
end
local grant = limit - used
if grant > want then
  grant = want
end
if grant > 0 and grant >= least then
  redis.call('ZADD', key, string.format('%d', now), string.format('%d', grant) .. ':' .. me .. ':' .. ARGV[5])
  redis.call('PEXPIRE', key, string.format('%d', math.floor(window / 1000) + 1000))
  return {grant, 0, instances, used + grant, nowstr}
end
-- Too little free: retry when enough of the oldest leases have left the window for `least`.
local short = least - (limit - used)
local retry = 1000
for i = 1, #members, 2 do
  local n = string.match(members[i], '^(%d+):')
  if n then
    short = short - tonumber(n)
    retry = tonumber(members[i + 1]) + window - now
    if short <= 0 then
      break
    end
  end
end
if retry < 1 then
  retry = 1
end
return {0, string.format('%d', retry), instances, used, nowstr}
