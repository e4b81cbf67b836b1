//! The Lua scripts that change the cluster's shared state in Redis. Each is
//! one atomic step: it checks what the contract requires, changes every key
//! involved, and appends the entries the affected nodes must apply to their
//! inboxes, all or nothing. Every script takes the key base (`{prefix}`) as
//! `KEYS[1]` and derives the other keys from it; they all share that hash
//! tag. A script never raises: it answers an array whose first element is
//! `OK` or the name of the rule that refused the call.
//!
//! Keys, under the base `B`:
//! - `B:epoch`: random, set by the first node; a node that finds it changed
//!   or gone knows Redis lost its data.
//! - `B:seq`: the last message id (`INCR`).
//! - `B:names`: hash, name -> `u <node> <connection>` for a user, `g` for a
//!   group: one namespace.
//! - `B:g:<group>`: hash, member -> the member's node. `B:gn:<group>`: hash,
//!   node -> how many members it holds (where group messages and events
//!   go). `B:gz:<group>`: sorted set of the members (score 0), for listing
//!   them in name order.
//! - `B:ty:<sender>:<conversation>`: set for two seconds by a typing notice
//!   let through (the throttle).
//! - `B:u:<user>`: set of the user's groups.
//! - `B:uz`: sorted set of the connected users (score 0), for listing them
//!   in name order; `B:ui`: hash, user -> `<connected at, µs> <peer>`.
//! - `B:ban:<user>`: set while an operator's ban refuses the username on
//!   Connect; expires with the ban.
//! - `B:sl:<user>`: the user's send budget (`--send-rate`): the moment, in
//!   µs of Redis's clock, from which its next message is within the
//!   budget; expires when that moment passes (the budget is full again).
//! - `B:h:<group>`: stream, the group's kept history, entry ids
//!   `<message id>-0`, fields `s` sender, `t` text, `ts`/`tu` time, and
//!   `o` `1` for an operator's message.
//!   `B:hm:<group>`: hash, `last` (newest message id), `count` and
//!   `bytes` (messages and text kept), `old`/`new` (the oldest and newest
//!   evicted id). Both go with the group.
//! - `B:hist`: hash, `messages` and `bytes` kept over every group.
//! - `B:r:<user>`: hash, an ended session kept for a resume: `t` token, `d`
//!   newest dropped id, `m` its recent messages (encoded by the node);
//!   expires with the resume window, and goes at the user's next connect.
//! - `B:nodes`: set of registered nodes; `B:node:<n>`: its lease (expires);
//!   `B:node:<n>:users`: the users whose stream it holds;
//!   `B:node:<n>:inbox`: its inbox stream, entries `<iseq>-0`;
//!   `B:node:<n>:iseq`: the inbox's last sequence number.
//!
//! Inbox entries, by their kind `k`: `j`/`l` connection `c` joined/left
//! group `g`; `b` direct messages, as many as one script run sent to the
//! node's users in a row: `m` the messages in the stored form of
//! `parked` (`id,seconds,micros,kind,len,len,len;` then sender, recipient
//! and text; kind `d`, or `D` for an operator's) and `c` their
//! connections, comma-separated, in order; `d` (as older nodes wrote it)
//! one direct message to connection `c`, `g` a message to
//! group `r` (fields `id`, `s`, `r`, `t`, `ts`, `tu`, and `op` `1` for an
//! operator's); `m` a membership event for group `g`'s members; `t` a
//! typing notice; `r` connection `c` was removed from group `g` by an
//! operator (it leaves the group and is told, with fields as `m`'s); `x`
//! an operator ends connection `c`'s stream, for reason `why`.

/// Helpers every script starts with. `ARGV[1]` is always the node running
/// the call.
const PRELUDE: &str = r#"
local B = KEYS[1]
local NAMES = B .. ':names'
local function node_key(n) return B .. ':node:' .. n end
local function live(n) return redis.call('EXISTS', node_key(n)) == 1 end
local function user_of(name)
  local rec = redis.call('HGET', NAMES, name)
  if not rec then return nil end
  return string.match(rec, '^u (%S+) (%S+)$')
end
local function append(n, ...)
  local seq = redis.call('INCR', node_key(n) .. ':iseq')
  redis.call('XADD', node_key(n) .. ':inbox', 'MAXLEN', '~', '100000', seq .. '-0', ...)
end
-- The next message id: `B:seq` is read once per run, and written back by
-- flush_all.
local last_id
local function next_id()
  last_id = (last_id or tonumber(redis.call('GET', B .. ':seq') or '0')) + 1
  return last_id
end
-- Direct messages accepted in this run and not yet in their node's inbox,
-- by node: `c` their connections, `m` their records (the stored form).
local pending = {}
-- Appends node n's pending direct messages as one entry (kind `b`).
local function flush(n)
  local p = pending[n]
  if p then
    pending[n] = nil
    append(n, 'k', 'b', 'c', table.concat(p.c, ','), 'm', table.concat(p.m))
  end
end
-- Every node's pending direct messages, and the last message id: what a
-- script that accepts messages runs before it answers.
local function flush_all()
  for n in pairs(pending) do flush(n) end
  if last_id then redis.call('SET', B .. ':seq', last_id) end
end
-- Appends an entry to node n's inbox, after the direct messages pending
-- for it: a node's inbox stays in the order the run made its entries.
local function push(n, ...)
  flush(n)
  append(n, ...)
end
local function drop_history(g)
  local hm = B .. ':hm:' .. g
  local kept = redis.call('XLEN', B .. ':h:' .. g)
  local bytes = tonumber(redis.call('HGET', hm, 'bytes') or '0')
  if kept > 0 or bytes > 0 then
    redis.call('HINCRBY', B .. ':hist', 'messages', -kept)
    redis.call('HINCRBY', B .. ':hist', 'bytes', -bytes)
  end
  redis.call('DEL', B .. ':h:' .. g, hm)
end
local function remove_member(g, name, n)
  redis.call('HDEL', B .. ':g:' .. g, name)
  redis.call('ZREM', B .. ':gz:' .. g, name)
  if redis.call('HINCRBY', B .. ':gn:' .. g, n, -1) <= 0 then
    redis.call('HDEL', B .. ':gn:' .. g, n)
  end
  if redis.call('HLEN', B .. ':g:' .. g) == 0 then
    redis.call('DEL', B .. ':g:' .. g, B .. ':gn:' .. g, B .. ':gz:' .. g)
    drop_history(g)
    redis.call('HDEL', NAMES, g)
    return true
  end
  return false
end
-- Keeps a group message in the group's history, in the same step that
-- gave it its id, evicting the oldest past `size` messages or `most`
-- bytes of text; `op` marks an operator's. The group's counts live in its
-- hm hash, read and written once per message.
local function keep_history(g, id, sender, text, ts, tu, size, most, op)
  local hm = B .. ':hm:' .. g
  local state = redis.call('HMGET', hm, 'bytes', 'count', 'old')
  if size == 0 or #text > most then
    redis.call('HSET', hm, 'last', id, 'new', id)
    if not state[3] then redis.call('HSET', hm, 'old', id) end
    return
  end
  local h = B .. ':h:' .. g
  if op then
    redis.call('XADD', h, id .. '-0', 's', sender, 't', text, 'ts', ts, 'tu', tu, 'o', '1')
  else
    redis.call('XADD', h, id .. '-0', 's', sender, 't', text, 'ts', ts, 'tu', tu)
  end
  local bytes = tonumber(state[1] or '0') + #text
  local kept = tonumber(state[2] or '0') + 1
  local gone, gone_bytes, oldest_gone, newest_gone = 0, 0, nil, nil
  while kept > size or bytes > most do
    local oldest = redis.call('XRANGE', h, '-', '+', 'COUNT', 1)[1]
    if not oldest then break end
    local len = #oldest[2][4]
    redis.call('XDEL', h, oldest[1])
    bytes, kept = bytes - len, kept - 1
    gone, gone_bytes = gone + 1, gone_bytes + len
    newest_gone = string.match(oldest[1], '^(%d+)')
    oldest_gone = oldest_gone or newest_gone
  end
  if not newest_gone then
    redis.call('HSET', hm, 'last', id, 'bytes', bytes, 'count', kept)
  elseif state[3] then
    redis.call('HSET', hm, 'last', id, 'bytes', bytes, 'count', kept, 'new', newest_gone)
  else
    -- The group's first eviction: its oldest evicted message from now on.
    redis.call('HSET', hm, 'last', id, 'bytes', bytes, 'count', kept, 'new', newest_gone,
      'old', oldest_gone)
  end
  if gone ~= 1 then redis.call('HINCRBY', B .. ':hist', 'messages', 1 - gone) end
  if #text ~= gone_bytes then redis.call('HINCRBY', B .. ':hist', 'bytes', #text - gone_bytes) end
end
-- Tells every node holding a member of group g that user's membership
-- changed (kind j, l, d or r), in the group's order, unless the group had
-- more than `most` members before (`before`) or after the change.
local function tell(g, user, kind, before, most)
  local after = redis.call('HLEN', B .. ':g:' .. g)
  if before > most or after > most then return end
  local t = redis.call('TIME')
  local position = redis.call('HGET', B .. ':hm:' .. g, 'last') or '0'
  for _, to in ipairs(redis.call('HKEYS', B .. ':gn:' .. g)) do
    push(to, 'k', 'm', 'g', g, 'u', user, 'mk', kind, 'n', after, 'p', position,
      'ts', t[1], 'tu', t[2])
  end
end
local function add_member(g, name, n, conn)
  redis.call('HSET', B .. ':g:' .. g, name, n)
  redis.call('ZADD', B .. ':gz:' .. g, 0, name)
  redis.call('HINCRBY', B .. ':gn:' .. g, n, 1)
  redis.call('SADD', B .. ':u:' .. name, g)
  push(n, 'k', 'j', 'g', g, 'c', conn)
end
local function drop_user(name, n, most)
  local groups = redis.call('SMEMBERS', B .. ':u:' .. name)
  local deleted = {}
  for _, g in ipairs(groups) do
    local before = redis.call('HLEN', B .. ':g:' .. g)
    if remove_member(g, name, n) then
      table.insert(deleted, g)
    else
      tell(g, name, 'd', before, most)
    end
  end
  redis.call('DEL', B .. ':u:' .. name)
  redis.call('HDEL', NAMES, name)
  redis.call('SREM', node_key(n) .. ':users', name)
  redis.call('ZREM', B .. ':uz', name)
  redis.call('HDEL', B .. ':ui', name)
  return #groups, deleted
end
-- The records of a batch entry (`b`: `m` the stored form of its messages,
-- `conns` their connections, comma-separated, in order) meant for
-- connection `conn`, in the stored form.
local function records_for(conns, m, conn)
  local out, pos = {}, 1
  for c in string.gmatch(conns, '[^,]+') do
    local semi = string.find(m, ';', pos, true)
    if not semi then break end
    local s, r, t = string.match(string.sub(m, pos, semi - 1), ',(%d+),(%d+),(%d+)$')
    if not t then break end
    local stop = semi + tonumber(s) + tonumber(r) + tonumber(t)
    if c == conn then out[#out + 1] = string.sub(m, pos, stop) end
    pos = stop + 1
  end
  return table.concat(out)
end
-- The messages for connection `conn` of user `name` in node n's inbox
-- after entry `after` (which the node had not applied when the connection
-- ended), in the form the node stores a ring in: direct messages to the
-- connection, and messages to the groups it was in at each point.
local function missed(name, n, conn, after)
  local entries = redis.call('XRANGE', node_key(n) .. ':inbox', '(' .. after .. '-0', '+')
  local fields = {}
  for i, entry in ipairs(entries) do
    local f = {}
    for j = 1, #entry[2], 2 do f[entry[2][j]] = entry[2][j + 1] end
    fields[i] = f
  end
  local member = {}
  for _, g in ipairs(redis.call('SMEMBERS', B .. ':u:' .. name)) do member[g] = true end
  -- Membership as it was after entry `after`: undo the later joins and
  -- leaves (an operator's removal `r` is a leave).
  for i = #fields, 1, -1 do
    local f = fields[i]
    if f.c == conn and f.k == 'j' then member[f.g] = nil end
    if f.c == conn and (f.k == 'l' or f.k == 'r') then member[f.g] = true end
  end
  local out = {}
  for _, f in ipairs(fields) do
    if f.c == conn and f.k == 'j' then member[f.g] = true end
    if f.c == conn and (f.k == 'l' or f.k == 'r') then member[f.g] = nil end
    if f.k == 'b' then
      table.insert(out, records_for(f.c, f.m, conn))
    elseif (f.k == 'd' and f.c == conn) or (f.k == 'g' and member[f.r]) then
      -- An operator's message is stored with its kind in capitals.
      local kind = f.k
      if f.op == '1' then kind = string.upper(kind) end
      table.insert(out, f.id .. ',' .. f.ts .. ',' .. f.tu .. ',' .. kind .. ',' .. #f.s .. ','
        .. #f.r .. ',' .. #f.t .. ';' .. f.s .. f.r .. f.t)
    end
  end
  return table.concat(out)
end
-- Redis's clock, read once per script run: every message one run accepts
-- carries the same time.
local clock
local function now()
  clock = clock or redis.call('TIME')
  return clock
end
-- The milliseconds left of an operator's ban on `name`, or nil.
local function banned(name)
  local left = redis.call('PTTL', B .. ':ban:' .. name)
  if left > 0 then return left end
  return nil
end
-- Spends one message of `user`'s send budget, the generic cell rate
-- algorithm on Redis's clock: the key holds the moment from which its
-- next message is within the budget, in µs; a message may go while that
-- moment is at most `tolerance` µs ahead of now, and moves it on by
-- `interval` µs (0: no limit). Answers nil, or the µs to wait, spending
-- nothing.
local function spend(user, interval, tolerance)
  if interval <= 0 then return nil end
  local key = B .. ':sl:' .. user
  local t = now()
  local at = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local moment = math.max(tonumber(redis.call('GET', key) or '0'), at)
  if moment - at > tolerance then return moment - at - tolerance end
  moment = moment + interval
  -- %d: a plain number would be written with 14 significant digits.
  redis.call('SET', key, string.format('%d', moment), 'PX', math.ceil((moment - at) / 1000))
  return nil
end
-- accept for a direct message to the user whose names record is `rec`:
-- pending for the user's node (see flush_all); answers its id. `lengths`,
-- if given, is `<#sender>,<#to>,<#text>` as the caller counted them.
local places = {}
local function accept_direct(sender, to, rec, text, op, lengths)
  local id = next_id()
  -- A run's messages often go to the same few users: each record is
  -- parsed once per run, and the time's text made once.
  local place = places[rec]
  if not place then
    local n, conn = string.match(rec, '^u (%S+) (%S+)$')
    place = {n = n, conn = conn}
    places[rec] = place
  end
  local p = pending[place.n]
  if not p then
    local t = now()
    p = {c = {}, m = {}, at = ',' .. t[1] .. ',' .. t[2] .. ','}
    pending[place.n] = p
  end
  p.c[#p.c + 1] = place.conn
  p.m[#p.m + 1] = id .. p.at .. (op and 'D' or 'd') .. ','
    .. (lengths or (#sender .. ',' .. #to .. ',' .. #text)) .. ';' .. sender .. to .. text
  return id
end
-- SEND's answer for what send or accept_direct answered: a bare id is a
-- direct message accepted at the run's time.
local function direct_answer(answer)
  if type(answer) == 'number' then return {'OK', answer, clock[1], clock[2], 1, 'd'} end
  return answer
end
-- Accepts a message from `sender` (an operator's when `op`) to `to`, whose
-- names record is `rec`: takes the next id and the server's time, and
-- appends the message to the inbox of the recipient's node (pending: see
-- flush_all), or of every node holding a member of the group and to the
-- group's history. Answers
-- `OK id seconds microseconds recipients kind` (kind `d` direct, `g`
-- group).
local function accept(sender, to, rec, text, size, most, op)
  if rec ~= 'g' then
    return direct_answer(accept_direct(sender, to, rec, text, op))
  end
  local id = next_id()
  local t = now()
  for _, n in ipairs(redis.call('HKEYS', B .. ':gn:' .. to)) do
    if op then
      push(n, 'k', 'g', 'id', id, 's', sender, 'r', to, 't', text, 'ts', t[1], 'tu', t[2],
        'op', '1')
    else
      push(n, 'k', 'g', 'id', id, 's', sender, 'r', to, 't', text, 'ts', t[1], 'tu', t[2])
    end
  end
  keep_history(to, id, sender, text, t[1], t[2], size, most, op)
  return {'OK', id, t[1], t[2], redis.call('HLEN', B .. ':g:' .. to), 'g'}
end
-- A user's message, on a node already known to be live: `from` must be
-- connected, within its send budget (`interval`, `tolerance`: see spend)
-- and, for a group, a member. Answers as accept, but a direct message
-- accepted answers its id alone (see direct_answer), or the refusing rule.
local function send(from, to, text, size, most, interval, tolerance, lengths)
  local names = redis.call('HMGET', NAMES, from, to)
  -- 117: `u`, a user's record.
  if not names[1] or string.byte(names[1]) ~= 117 then return {'UNAUTH'} end
  local wait = spend(from, interval, tolerance)
  if wait then return {'TOOFAST', wait} end
  local rec = names[2]
  if not rec then return {'NORECIP'} end
  if rec == 'g' then
    if redis.call('HEXISTS', B .. ':g:' .. to, from) == 0 then return {'NOTMEMBEROF'} end
    return accept(from, to, rec, text, size, most, false)
  end
  return accept_direct(from, to, rec, text, false, lengths)
end
-- Tells connection `conn` of `name` on node n that an operator removed it
-- from group g, which then has `count` members: the node takes it out of
-- the group and queues it a REMOVED event if its stream asked for them.
local function tell_removed(n, conn, g, name, count, position, t)
  push(n, 'k', 'r', 'g', g, 'c', conn, 'u', name, 'n', count, 'p', position,
    'ts', t[1], 'tu', t[2])
end
local function caller()
  if not live(ARGV[1]) then return nil, {'FENCED'} end
  local n, conn = user_of(ARGV[2])
  if not n then return nil, {'UNAUTH'} end
  return n, conn
end
"#;

/// ARGV: node, ttl ms, a fresh epoch. Registers the node's lease; sets the
/// epoch if Redis has none. Answers `OK epoch`.
pub const REGISTER: &str = r#"
local e = redis.call('GET', B .. ':epoch')
if not e then
  e = ARGV[3]
  redis.call('SET', B .. ':epoch', e)
end
if not redis.call('SET', node_key(ARGV[1]), e, 'NX', 'PX', ARGV[2]) then return {'EXISTS'} end
redis.call('SADD', B .. ':nodes', ARGV[1])
return {'OK', e}
"#;

/// ARGV: node, ttl ms, epoch. Renews the lease: `EPOCH` when Redis lost its
/// data, `EXPIRED` when the lease is gone; else `OK` with the messages and
/// bytes of text kept in every group's history (for the node's gauges).
pub const RENEW: &str = r#"
if redis.call('GET', B .. ':epoch') ~= ARGV[3] then return {'EPOCH'} end
if not redis.call('SET', node_key(ARGV[1]), ARGV[3], 'XX', 'PX', ARGV[2]) then return {'EXPIRED'} end
local kept = redis.call('HMGET', B .. ':hist', 'messages', 'bytes')
return {'OK', tonumber(kept[1] or '0'), tonumber(kept[2] or '0')}
"#;

/// ARGV: node. The registered nodes whose lease has expired.
pub const DEAD_NODES: &str = r#"
local dead = {'OK'}
for _, n in ipairs(redis.call('SMEMBERS', B .. ':nodes')) do
  if n ~= ARGV[1] and not live(n) then table.insert(dead, n) end
end
return dead
"#;

/// ARGV: node, dead node, batch size, force (1: the caller retires its own
/// old identity), membership events' most members. Frees up to a batch of
/// a dead node's users; `DONE` once none is left and the node's keys are
/// gone, else `MORE`.
pub const REAP: &str = r#"
local dead = ARGV[2]
if ARGV[4] ~= '1' and live(dead) then return {'ALIVE'} end
local users = redis.call('SPOP', node_key(dead) .. ':users', tonumber(ARGV[3]))
for _, name in ipairs(users) do
  local n = user_of(name)
  if n == dead then drop_user(name, dead, tonumber(ARGV[5])) end
end
if redis.call('SCARD', node_key(dead) .. ':users') == 0 then
  redis.call('DEL', node_key(dead), node_key(dead) .. ':users', node_key(dead) .. ':inbox',
    node_key(dead) .. ':iseq')
  redis.call('SREM', B .. ':nodes', dead)
  return {'DONE', #users}
end
return {'MORE', #users}
"#;

/// ARGV: node, name, connection, resume token (empty: none asked), the
/// client's address. Refuses a banned name first (`BANNED ms_left`), then
/// claims the name for a connection on this node, noting when and from
/// where it connected, and ends what the name's last session left for a
/// resume: `OK 1 dropped messages` when the token matches it, else `OK 0`.
pub const CONNECT: &str = r#"
local left = banned(ARGV[2])
if left then return {'BANNED', left} end
if not live(ARGV[1]) then return {'FENCED'} end
if redis.call('HSETNX', NAMES, ARGV[2], 'u ' .. ARGV[1] .. ' ' .. ARGV[3]) == 0 then
  return {'TAKEN'}
end
redis.call('SADD', node_key(ARGV[1]) .. ':users', ARGV[2])
redis.call('ZADD', B .. ':uz', 0, ARGV[2])
local t = redis.call('TIME')
redis.call('HSET', B .. ':ui', ARGV[2], t[1] .. string.format('%06d', t[2]) .. ' ' .. ARGV[5])
local parked = B .. ':r:' .. ARGV[2]
local kept = redis.call('HMGET', parked, 't', 'd', 'm')
redis.call('DEL', parked)
if ARGV[4] ~= '' and kept[1] and kept[1] == ARGV[4] then
  return {'OK', 1, kept[2], kept[3]}
end
return {'OK', 0}
"#;

/// ARGV: node, name. Only checks an operator's ban on the name: `OK`, or
/// `BANNED ms_left` (a Connect the node refuses on its own, full or
/// shutting down, is refused for a ban first).
pub const BANNED: &str = r#"
local left = banned(ARGV[2])
if left then return {'BANNED', left} end
return {'OK'}
"#;

/// ARGV: node, name, the connection's node, connection, resume token,
/// resume window ms, newest dropped id, recent messages, the last entry of
/// the node's inbox applied to the connection, membership events' most
/// members. Frees the name if that connection still holds it, leaving every
/// group (telling each), and keeps its recent messages for a resume (when
/// the window and token are set), with those still in the inbox after that
/// entry: every message accepted for the connection before this step is
/// kept.
/// Answers `OK groups_left deleted...` or `GONE`.
pub const DISCONNECT: &str = r#"
if redis.call('HGET', NAMES, ARGV[2]) ~= 'u ' .. ARGV[3] .. ' ' .. ARGV[4] then return {'GONE'} end
if ARGV[5] ~= '' and tonumber(ARGV[6]) > 0 then
  local parked = B .. ':r:' .. ARGV[2]
  redis.call('DEL', parked)
  local ring = ARGV[8] .. missed(ARGV[2], ARGV[3], ARGV[4], ARGV[9])
  redis.call('HSET', parked, 't', ARGV[5], 'd', ARGV[7], 'm', ring)
  redis.call('PEXPIRE', parked, ARGV[6])
end
local left, deleted = drop_user(ARGV[2], ARGV[3], tonumber(ARGV[10]))
local answer = {'OK', left}
for _, g in ipairs(deleted) do table.insert(answer, g) end
return answer
"#;

/// ARGV: node, caller. Only authenticates the caller.
pub const WHOAMI: &str = r#"
local n, refused = caller()
if not n then return refused end
return {'OK'}
"#;

/// ARGV: node, caller, group, most groups per user, membership events'
/// most members.
pub const CREATE_GROUP: &str = r#"
local n, conn = caller()
if not n then return conn end
if redis.call('HEXISTS', NAMES, ARGV[3]) == 1 then return {'TAKEN'} end
if redis.call('SCARD', B .. ':u:' .. ARGV[2]) >= tonumber(ARGV[4]) then return {'TOOMANYGROUPS'} end
redis.call('HSET', NAMES, ARGV[3], 'g')
add_member(ARGV[3], ARGV[2], n, conn)
tell(ARGV[3], ARGV[2], 'j', 0, tonumber(ARGV[5]))
return {'OK'}
"#;

/// ARGV: node, caller, group, most groups per user, membership events'
/// most members. Answers `OK position`: the id of the group's newest
/// message at the join (0: none).
pub const JOIN_GROUP: &str = r#"
local n, conn = caller()
if not n then return conn end
if redis.call('HGET', NAMES, ARGV[3]) ~= 'g' then return {'NOGROUP'} end
if redis.call('HEXISTS', B .. ':g:' .. ARGV[3], ARGV[2]) == 1 then return {'MEMBER'} end
if redis.call('SCARD', B .. ':u:' .. ARGV[2]) >= tonumber(ARGV[4]) then return {'TOOMANYGROUPS'} end
local before = redis.call('HLEN', B .. ':g:' .. ARGV[3])
add_member(ARGV[3], ARGV[2], n, conn)
tell(ARGV[3], ARGV[2], 'j', before, tonumber(ARGV[5]))
return {'OK', tonumber(redis.call('HGET', B .. ':hm:' .. ARGV[3], 'last') or '0')}
"#;

/// ARGV: node, caller, group, (most groups per user), membership events'
/// most members. Answers `OK 1` when the group was deleted.
pub const LEAVE_GROUP: &str = r#"
local n, conn = caller()
if not n then return conn end
if redis.call('HGET', NAMES, ARGV[3]) ~= 'g' then return {'NOGROUP'} end
if redis.call('HEXISTS', B .. ':g:' .. ARGV[3], ARGV[2]) == 0 then return {'NOTMEMBER'} end
push(n, 'k', 'l', 'g', ARGV[3], 'c', conn)
redis.call('SREM', B .. ':u:' .. ARGV[2], ARGV[3])
local before = redis.call('HLEN', B .. ':g:' .. ARGV[3])
if remove_member(ARGV[3], ARGV[2], n) then return {'OK', 1} end
tell(ARGV[3], ARGV[2], 'l', before, tonumber(ARGV[5]))
return {'OK', 0}
"#;

/// ARGV: node, caller, recipient, text, history size, history bytes, send
/// interval µs (0: no limit), send tolerance µs. Spends one message of the
/// caller's send budget first (`TOOFAST µs_to_wait`, spending nothing,
/// when it is used up), then checks the recipient; takes the next message
/// id and the server's time, and appends the message to the inbox of the
/// recipient's node, or of every node holding a member of the group and to
/// the group's history. Answers `OK id seconds microseconds recipients
/// kind` (kind `d` direct, `g` group).
pub const SEND: &str = r#"
if not live(ARGV[1]) then return {'FENCED'} end
local answer = send(ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]),
  tonumber(ARGV[7]), tonumber(ARGV[8]))
flush_all()
return direct_answer(answer)
"#;

/// ARGV: node, history size, history bytes, send interval µs, send
/// tolerance µs (as SEND's, the same for every message), then four per
/// message: caller, recipient, text, and their lengths in bytes as
/// `<caller>,<recipient>,<text>` (which the run would otherwise format).
/// Several SEND calls in one run, in
/// order: a node's pipeline of sends pays for one script call, one lease
/// check, one clock read and one id counter update. Answers the time of
/// the run (seconds, microseconds; 0 0 when nothing was accepted), then
/// one answer per message: its id alone for a direct message accepted
/// (one recipient, at that time), else as SEND would answer it.
pub const SEND_MANY: &str = r#"
local fenced = not live(ARGV[1])
local size, most = tonumber(ARGV[2]), tonumber(ARGV[3])
local interval, tolerance = tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {0, 0}
for i = 6, #ARGV - 3, 4 do
  local answer = {'FENCED'}
  if not fenced then
    answer = send(ARGV[i], ARGV[i + 1], ARGV[i + 2], size, most, interval, tolerance, ARGV[i + 3])
  end
  out[#out + 1] = answer
end
flush_all()
if clock then out[1], out[2] = clock[1], clock[2] end
return out
"#;

/// ARGV: node, caller, send interval µs, send tolerance µs. Spends one
/// message of the caller's send budget as SEND does, for a send refused
/// for its arguments (it counts all the same): `OK` or `TOOFAST
/// µs_to_wait`.
pub const SPEND: &str = r#"
local n, conn = caller()
if not n then return conn end
local wait = spend(ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
if wait then return {'TOOFAST', wait} end
return {'OK'}
"#;

/// ARGV: node, sender (the operator's chosen name), recipient, text,
/// history size, history bytes. An operator's message: as SEND, to any
/// connected user or group (no membership, no send limit), marked as an
/// operator's in the inboxes and the history. Answers as SEND.
pub const PUBLISH: &str = r#"
if not live(ARGV[1]) then return {'FENCED'} end
local rec = redis.call('HGET', NAMES, ARGV[3])
if not rec then return {'NORECIP'} end
local answer = accept(ARGV[2], ARGV[3], rec, ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), true)
flush_all()
return answer
"#;

/// ARGV: node, username, reason, ban ms (0: none), membership events' most
/// members. An operator's disconnect: with a ban, the name is refused on
/// Connect for that long (a longer ban in force stays) and what its last
/// session left for a resume is dropped. If the user is connected, its
/// node is told to end the stream (`x`, ahead of the DISCONNECTED events
/// its groups get, and after everything already queued for it), and it
/// leaves every group as on any disconnect, keeping nothing for a resume.
/// Answers `OK groups_left deleted...` (`OK 0` for a ban of a user not
/// connected), or `NOTFOUND`.
pub const DISCONNECT_USER: &str = r#"
if not live(ARGV[1]) then return {'FENCED'} end
local name = ARGV[2]
if tonumber(ARGV[4]) > 0 then
  local ban = B .. ':ban:' .. name
  if redis.call('PTTL', ban) < tonumber(ARGV[4]) then
    redis.call('SET', ban, '1', 'PX', ARGV[4])
  end
  redis.call('DEL', B .. ':r:' .. name)
end
local n, conn = user_of(name)
if not n then
  if tonumber(ARGV[4]) > 0 then return {'OK', 0} end
  return {'NOTFOUND'}
end
push(n, 'k', 'x', 'c', conn, 'why', ARGV[3])
local left, deleted = drop_user(name, n, tonumber(ARGV[5]))
local answer = {'OK', left}
for _, g in ipairs(deleted) do table.insert(answer, g) end
return answer
"#;

/// ARGV: node, group, username, membership events' most members. An
/// operator's removal of a member: its node takes it out of the group and
/// tells it (`r`, with the members left), the group is deleted if it
/// empties, else its members are told (`m`, kind `r`) as for a leave.
/// Answers `OK 1` when the group was deleted, `OK 0`, `NOGROUP` or
/// `NOTMEMBER`.
pub const REMOVE_MEMBER: &str = r#"
if not live(ARGV[1]) then return {'FENCED'} end
local g, name = ARGV[2], ARGV[3]
if redis.call('HGET', NAMES, g) ~= 'g' then return {'NOGROUP'} end
if redis.call('HEXISTS', B .. ':g:' .. g, name) == 0 then return {'NOTMEMBER'} end
local n, conn = user_of(name)
if not n then return {'NOTMEMBER'} end
local before = redis.call('HLEN', B .. ':g:' .. g)
local position = redis.call('HGET', B .. ':hm:' .. g, 'last') or '0'
tell_removed(n, conn, g, name, before - 1, position, redis.call('TIME'))
redis.call('SREM', B .. ':u:' .. name, g)
if remove_member(g, name, n) then return {'OK', 1} end
tell(g, name, 'r', before, tonumber(ARGV[4]))
return {'OK', 0}
"#;

/// ARGV: node, group. An operator's deletion of a group with its history:
/// every member's node takes it out of the group and tells it (`r`, 0
/// members left). One step whatever the group's size. Answers `OK
/// members_removed` or `NOGROUP`.
pub const DELETE_GROUP: &str = r#"
if not live(ARGV[1]) then return {'FENCED'} end
local g = ARGV[2]
if redis.call('HGET', NAMES, g) ~= 'g' then return {'NOGROUP'} end
local position = redis.call('HGET', B .. ':hm:' .. g, 'last') or '0'
local t = redis.call('TIME')
local members = redis.call('HKEYS', B .. ':g:' .. g)
for _, name in ipairs(members) do
  local n, conn = user_of(name)
  if n then tell_removed(n, conn, g, name, 0, position, t) end
  redis.call('SREM', B .. ':u:' .. name, g)
end
redis.call('DEL', B .. ':g:' .. g, B .. ':gn:' .. g, B .. ':gz:' .. g)
drop_history(g)
redis.call('HDEL', NAMES, g)
return {'OK', #members}
"#;

/// ARGV: node, the name to list after (empty: from the first), count.
/// Answers `OK user_count` then, for up to `count` connected users after
/// it in name order, `name node connected_at_µs group_count peer`.
pub const LIST_USERS: &str = r#"
if not live(ARGV[1]) then return {'FENCED'} end
local from = '-'
if ARGV[2] ~= '' then from = '(' .. ARGV[2] end
local answer = {'OK', redis.call('ZCARD', B .. ':uz')}
for _, name in ipairs(redis.call('ZRANGEBYLEX', B .. ':uz', from, '+', 'LIMIT', 0, ARGV[3])) do
  local n = user_of(name)
  local at, peer = string.match(redis.call('HGET', B .. ':ui', name) or '', '^(%d+) (.*)$')
  table.insert(answer, name)
  table.insert(answer, n or '')
  table.insert(answer, at or '0')
  table.insert(answer, redis.call('SCARD', B .. ':u:' .. name))
  table.insert(answer, peer or '')
end
return answer
"#;

/// ARGV: node, caller. One consistent snapshot: `OK` then `u name` per user
/// and `g name member_count joined` per group.
pub const LIST_CHANNELS: &str = r#"
local n, conn = caller()
if not n then return conn end
local answer = {'OK'}
local all = redis.call('HGETALL', NAMES)
for i = 1, #all, 2 do
  local name, rec = all[i], all[i + 1]
  if rec == 'g' then
    table.insert(answer, 'g')
    table.insert(answer, name)
    table.insert(answer, redis.call('HLEN', B .. ':g:' .. name))
    table.insert(answer, redis.call('HEXISTS', B .. ':g:' .. name, ARGV[2]))
  else
    table.insert(answer, 'u')
    table.insert(answer, name)
  end
end
return answer
"#;

/// ARGV: node, caller, group, the name to list after (empty: from the
/// first), count. Answers `OK member_count` then up to `count` member
/// names after it, in name order.
pub const LIST_MEMBERS: &str = r#"
local n, conn = caller()
if not n then return conn end
local g = ARGV[3]
if redis.call('HGET', NAMES, g) ~= 'g' then return {'NOGROUP'} end
local from = '-'
if ARGV[4] ~= '' then from = '(' .. ARGV[4] end
local answer = {'OK', redis.call('HLEN', B .. ':g:' .. g)}
for _, name in ipairs(redis.call('ZRANGEBYLEX', B .. ':gz:' .. g, from, '+', 'LIMIT', 0, ARGV[5])) do
  table.insert(answer, name)
end
return answer
"#;

/// ARGV: node, caller, recipient. Checks as SEND does; lets through one
/// notice per sender and conversation per two seconds, appending it to the
/// recipient's node inbox or to every node holding a member of the group.
/// Answers `OK` (or `OK throttled`).
pub const SEND_TYPING: &str = r#"
local n, conn = caller()
if not n then return conn end
local rec = redis.call('HGET', NAMES, ARGV[3])
if not rec then return {'NORECIP'} end
if rec == 'g' and redis.call('HEXISTS', B .. ':g:' .. ARGV[3], ARGV[2]) == 0 then
  return {'NOTMEMBEROF'}
end
local conversation = ARGV[3]
if rec ~= 'g' then conversation = ARGV[2] end
local key = B .. ':ty:' .. ARGV[2] .. ':' .. ARGV[3]
if not redis.call('SET', key, '1', 'PX', 2000, 'NX') then return {'OK', 'throttled'} end
if rec ~= 'g' then
  local to, to_conn = string.match(rec, '^u (%S+) (%S+)$')
  push(to, 'k', 't', 'c', to_conn, 'cv', conversation, 'ck', 'd', 'u', ARGV[2])
  return {'OK'}
end
for _, to in ipairs(redis.call('HKEYS', B .. ':gn:' .. ARGV[3])) do
  push(to, 'k', 't', 'cv', conversation, 'ck', 'g', 'u', ARGV[2])
end
return {'OK'}
"#;

/// ARGV: node, caller, group, after id, before id (0: none), count. Reads
/// up to `count` kept messages of the group strictly between the bounds:
/// the oldest when `after` > 0, else the newest (newest first). Answers
/// `OK oldest_evicted newest_evicted` then `id sender text seconds
/// microseconds from_operator` per message (from_operator 1 or 0).
pub const HISTORY: &str = r#"
local n, conn = caller()
if not n then return conn end
local g = ARGV[3]
if redis.call('HGET', NAMES, g) ~= 'g' then return {'NOGROUP'} end
if redis.call('HEXISTS', B .. ':g:' .. g, ARGV[2]) == 0 then return {'NOTMEMBER'} end
local span = redis.call('HMGET', B .. ':hm:' .. g, 'old', 'new')
local answer = {'OK', tonumber(span[1] or '0'), tonumber(span[2] or '0')}
local h = B .. ':h:' .. g
local upper = '+'
if ARGV[5] ~= '0' then upper = '(' .. ARGV[5] .. '-0' end
local found
if ARGV[4] ~= '0' then
  found = redis.call('XRANGE', h, '(' .. ARGV[4] .. '-0', upper, 'COUNT', ARGV[6])
else
  found = redis.call('XREVRANGE', h, upper, '-', 'COUNT', ARGV[6])
end
for _, entry in ipairs(found) do
  local f = entry[2]
  table.insert(answer, string.match(entry[1], '^(%d+)'))
  table.insert(answer, f[2])
  table.insert(answer, f[4])
  table.insert(answer, f[6])
  table.insert(answer, f[8])
  table.insert(answer, f[10] == '1' and 1 or 0)
end
return answer
"#;

/// Every script, by name, each with the prelude in front.
pub fn all() -> [(&'static str, String); 23] {
    [
        ("register", REGISTER),
        ("renew", RENEW),
        ("dead_nodes", DEAD_NODES),
        ("reap", REAP),
        ("connect", CONNECT),
        ("disconnect", DISCONNECT),
        ("whoami", WHOAMI),
        ("create_group", CREATE_GROUP),
        ("join_group", JOIN_GROUP),
        ("leave_group", LEAVE_GROUP),
        ("send", SEND),
        ("send_many", SEND_MANY),
        ("list_channels", LIST_CHANNELS),
        ("history", HISTORY),
        ("list_members", LIST_MEMBERS),
        ("send_typing", SEND_TYPING),
        ("banned", BANNED),
        ("spend", SPEND),
        ("publish", PUBLISH),
        ("disconnect_user", DISCONNECT_USER),
        ("remove_member", REMOVE_MEMBER),
        ("delete_group", DELETE_GROUP),
        ("list_users", LIST_USERS),
    ]
    .map(|(name, body)| (name, format!("{PRELUDE}{body}")))
}
