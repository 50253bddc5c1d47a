package cluster

import "github.com/redis/go-redis/v9"

// registerScript: KEYS node:<name>, nodes, index:<name>, indexes, byindex;
// ARGV token, ttl ms, advertise, name, wanted index (0 = any), then the
// record's field/value pairs.
//
// A record held by another token is refused unless it advertises the same
// URL: that is this node restarted (it holds the listener the URL names),
// not a second node with its name.
var registerScript = redis.NewScript(`
local t = redis.call('HGET', KEYS[1], 'token')
if t and t ~= ARGV[1] then
  local adv = redis.call('HGET', KEYS[1], 'advertise')
  if adv ~= ARGV[3] then
    return redis.error_reply('TAKEN node ' .. ARGV[4] .. ' is registered by another gateway (' .. tostring(adv) .. ')')
  end
end
local idx = redis.call('GET', KEYS[3])
if idx == false then
  local want = tonumber(ARGV[5])
  if want > 0 then
    local holder = redis.call('HGET', KEYS[5], want)
    if holder == false or holder == ARGV[4] then
      idx = want
      if tonumber(redis.call('GET', KEYS[4]) or '0') < want then redis.call('SET', KEYS[4], want) end
    end
  end
  if idx == false then
    repeat
      idx = redis.call('INCR', KEYS[4])
    until redis.call('HEXISTS', KEYS[5], idx) == 0
  end
  if tonumber(idx) >= 1000 then return redis.error_reply('FULL no node index left below 1000') end
  redis.call('SET', KEYS[3], idx)
  redis.call('HSET', KEYS[5], idx, ARGV[4])
end
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'index', idx, unpack(ARGV, 6))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[4])
return tonumber(idx)`)

// beatScript: KEYS node:<name>; ARGV token, ttl ms, load. 0: the record is
// gone (expired, or Redis lost it): register again.
var beatScript = redis.NewScript(`
local t = redis.call('HGET', KEYS[1], 'token')
if t == false then return 0 end
if t ~= ARGV[1] then return redis.error_reply('TAKEN the record of this node now belongs to another gateway') end
redis.call('HSET', KEYS[1], 'load', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`)

// claimScript: KEYS conf:<name>, confs:<node>; ARGV node, name, node-key
// prefix. Returns the holder: this node when the claim is (now) ours. A
// holder whose node record is gone (dead, not yet cleaned) loses it.
var claimScript = redis.NewScript(`
local o = redis.call('GET', KEYS[1])
if o ~= false and o ~= ARGV[1] and redis.call('EXISTS', ARGV[3] .. o) == 1 then return o end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return ARGV[1]`)

// unclaimScript: KEYS conf:<name>, confs:<node>; ARGV node, name.
var unclaimScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[2], ARGV[2])
return 1`)
