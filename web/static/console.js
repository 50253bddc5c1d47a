// mediagw operator console: a live view of the session table over the HTTP
// API. Polls /v1/connections and /v1/conferences (counters), follows
// /v1/events (releases, talkers, operations) and renders only the rows in
// view, so a thousand connections cost what a screenful does.
'use strict';

const ROW_H = 30;
const POLL_MS = 2000;
const METRICS_MS = 5000;
const MAX_EVENTS = 200;

const $ = (id) => document.getElementById(id);
class AuthError extends Error {}

const api = {
  token: sessionStorage.getItem('mediagw.token') || '',
  async call(method, path, body) {
    const headers = {};
    if (this.token) headers.Authorization = 'Bearer ' + this.token;
    const init = { method, headers };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    if (res.status === 401) {
      showLogin(this.token ? 'The token was refused.' : '');
      throw new AuthError('unauthorized');
    }
    return res;
  },
  async json(path) {
    const res = await this.call('GET', path);
    if (!res.ok) throw new Error(path + ': ' + res.status);
    return res.json();
  },
  async action(name, params) {
    const res = await this.call('POST', '/v1/actions/' + name, params);
    return res.json();
  },
};

// The model. conns and confs are replaced by each poll; events patch them
// in between.
const state = {
  conns: new Map(),   // ConnectionId → connection view
  confs: new Map(),   // ConferenceId → conference view
  talking: new Set(), // ConnectionIds talking now
  ops: new Map(),     // OperationId → {action, target}
  rows: [],
  live: false,
  queued: false,
};

// ---------- rows ----------

function buildRows() {
  const rows = [];
  const confs = [...state.confs.values()].sort(byID('ConferenceId'));
  const mixed = confs.filter((c) => c.Kind !== 'bridge');
  const bridges = confs.filter((c) => c.Kind === 'bridge');
  if (mixed.length) rows.push({ type: 'section', text: 'Conferences (' + mixed.length + ')' });
  for (const cf of mixed) {
    rows.push({ type: 'conf', conf: cf });
    for (const m of cf.Members) rows.push({ type: 'member', conf: cf, member: m });
  }
  if (bridges.length) rows.push({ type: 'section', text: 'Calls and bridges (' + bridges.length + ')' });
  for (const cf of bridges) {
    rows.push({ type: 'bridge', conf: cf });
    for (const m of cf.Members) rows.push({ type: 'member', conf: cf, member: m });
  }
  const loose = [...state.conns.values()].filter((c) => !c.ConferenceId).sort(byID('ConnectionId'));
  if (loose.length) rows.push({ type: 'section', text: 'Connections in no conference (' + loose.length + ')' });
  for (const c of loose) rows.push({ type: 'conn', id: c.ConnectionId });
  state.rows = rows;
  schedule();
}

function byID(key) {
  return (a, b) => (a[key].length - b[key].length) || (a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : 0);
}

function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[ch]));
}

function age(created) {
  const t = Date.parse(created);
  if (!t) return '';
  let s = Math.max(0, Math.floor((Date.now() - t) / 1000));
  if (s < 60) return s + 's';
  const m = Math.floor(s / 60); s %= 60;
  if (m < 60) return m + 'm' + String(s).padStart(2, '0') + 's';
  return Math.floor(m / 60) + 'h' + String(m % 60).padStart(2, '0') + 'm';
}

function opsOf(target) {
  const out = [];
  for (const op of state.ops.values()) if (op.target === target) out.push(op.action);
  return out;
}

function connCells(c, member, conf) {
  const flags = [];
  if (member && member.Mute) flags.push('<span class="badge muted">muted</span>');
  if (member && member.ReceiveOnly) flags.push('<span class="badge recv">recv-only</span>');
  if (member && member.Coach) flags.push('<span class="badge">coach</span>');
  if (member && member.Pupil) flags.push('<span class="badge">pupil</span>');
  for (const a of opsOf(c ? c.ConnectionId : '')) flags.push('<span class="badge op">' + esc(a) + '</span>');
  const id = c ? c.ConnectionId : member.ConnectionId;
  const remote = c && c.MediaTxIP ? c.MediaTxIP + ':' + c.MediaTxPort : '–';
  let actions = '';
  if (member && conf && conf.Kind !== 'bridge') {
    actions += member.Mute
      ? `<button type="button" data-act="unmute" data-conn="${esc(id)}" data-conf="${esc(conf.ConferenceId)}">Unmute</button> `
      : `<button type="button" data-act="mute" data-conn="${esc(id)}" data-conf="${esc(conf.ConferenceId)}">Mute</button> `;
  }
  actions += `<button type="button" class="danger" data-act="kick" data-conn="${esc(id)}">Kick</button>`;
  return `<span class="c-talk"></span><span class="c-id">${esc(id)}</span><span class="c-owner">${esc(c ? c.Owner : '')}</span>` +
    `<span class="c-codec">${esc(c ? c.Codec : '')}</span><span class="c-remote">${esc(remote)}</span>` +
    `<span class="c-flags">${flags.join('')}</span>` +
    `<span class="c-num">${c ? c.PacketsReceived : ''}</span><span class="c-num">${c ? c.PacketsSent : ''}</span>` +
    `<span class="c-num">${c ? c.PacketsLost : ''}</span><span class="c-num">${c ? c.JitterMs + ' ms' : ''}</span>` +
    `<span class="c-age">${c ? age(c.Created) : ''}</span><span class="c-actions">${actions}</span>`;
}

// renderRow returns [className, innerHTML, connection id] for one row.
function renderRow(r) {
  switch (r.type) {
    case 'section':
      return ['row section', `<span>${esc(r.text)}</span>`, ''];
    case 'conf': {
      const cf = r.conf;
      const talkers = cf.Members.filter((m) => state.talking.has(m.ConnectionId)).length;
      const ops = opsOf(cf.ConferenceId).map((a) => '<span class="badge op">' + esc(a) + '</span>').join('');
      const recording = opsOf(cf.ConferenceId).includes('Record');
      return ['row head', `<span class="title">Conference ${esc(cf.ConferenceId)} · ${cf.Members.length} members · ` +
        `${cf.Mixing ? 'mixing' : 'hairpin'} · ${talkers} talking · ${esc(age(cf.Created))} ${ops}</span>` +
        `<span class="c-actions"><button type="button" data-act="play" data-conf="${esc(cf.ConferenceId)}">Play…</button> ` +
        `<button type="button" data-act="${recording ? 'stoprecord' : 'record'}" data-conf="${esc(cf.ConferenceId)}">${recording ? 'Stop recording' : 'Record'}</button> ` +
        `<button type="button" class="danger" data-act="end" data-conf="${esc(cf.ConferenceId)}">End</button></span>`, ''];
    }
    case 'bridge': {
      const ids = r.conf.Members.map((m) => esc(m.ConnectionId)).join(' ⇄ ');
      return ['row head', `<span class="title">Bridge ${esc(r.conf.ConferenceId)} · ${ids} · ${esc(age(r.conf.Created))}</span>`, ''];
    }
    case 'member': {
      const id = r.member.ConnectionId;
      const cls = 'row member' + (state.talking.has(id) ? ' talking' : '');
      return [cls, connCells(state.conns.get(id), r.member, r.conf), id];
    }
    default: {
      const c = state.conns.get(r.id);
      return ['row conn' + (state.talking.has(r.id) ? ' talking' : ''), connCells(c, null, null), r.id];
    }
  }
}

const viewport = $('viewport');
const spacer = $('spacer');
const pool = [];

function schedule() {
  if (state.queued) return;
  state.queued = true;
  if (document.hidden) setTimeout(render, 100);
  else requestAnimationFrame(render);
}

// render fills the row elements in view; an element's HTML is replaced only
// when its row changed.
function render() {
  state.queued = false;
  const rows = state.rows;
  spacer.style.height = rows.length * ROW_H + 'px';
  const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_H) - 5);
  const count = Math.ceil((viewport.clientHeight || 600) / ROW_H) + 10;
  for (let i = 0; i < count; i++) {
    let el = pool[i];
    if (!el) {
      el = document.createElement('div');
      viewport.appendChild(el);
      pool[i] = el;
    }
    const idx = first + i;
    if (idx >= rows.length) {
      if (el.className !== 'row hidden') { el.className = 'row hidden'; el.innerHTML = ''; el._sig = ''; el.dataset.conn = ''; }
      continue;
    }
    const [cls, html, conn] = renderRow(rows[idx]);
    el.style.transform = 'translateY(' + idx * ROW_H + 'px)';
    if (el._sig !== html) { el.innerHTML = html; el._sig = html; }
    if (el.className !== cls) el.className = cls;
    if (el.dataset.conn !== conn) el.dataset.conn = conn;
  }
  for (let i = count; i < pool.length; i++) {
    if (pool[i].className !== 'row hidden') { pool[i].className = 'row hidden'; pool[i].innerHTML = ''; pool[i]._sig = ''; pool[i].dataset.conn = ''; }
  }
}
viewport.addEventListener('scroll', schedule, { passive: true });
window.addEventListener('resize', schedule);

// ---------- polling ----------

async function poll() {
  try {
    const [c, f] = await Promise.all([api.json('/v1/connections'), api.json('/v1/conferences')]);
    state.conns = new Map((c.Connections || []).map((x) => [x.ConnectionId, x]));
    state.confs = new Map((f.Conferences || []).map((x) => [x.ConferenceId, x]));
    // Without the stream the snapshot says who talks; with it, the first
    // snapshot after the stream opened seeds who was talking already, and
    // StartTalking/StopTalking events move it on from there.
    if (!state.live || state.seedTalking) {
      state.seedTalking = false;
      state.talking = new Set();
      for (const cf of state.confs.values()) for (const m of cf.Members) if (m.Talking) state.talking.add(m.ConnectionId);
    }
    $('s-conns').textContent = state.conns.size;
    $('s-confs').textContent = [...state.confs.values()].filter((x) => x.Kind !== 'bridge').length;
    $('s-bridges').textContent = [...state.confs.values()].filter((x) => x.Kind === 'bridge').length;
    buildRows();
  } catch (e) {
    if (!(e instanceof AuthError)) setStatus('poll failed: ' + e.message);
  }
}

async function pollMetrics() {
  try {
    const res = await api.call('GET', '/metrics');
    if (!res.ok) return;
    const text = await res.text();
    const val = (re) => { const m = text.match(re); return m ? Number(m[1]) : NaN; };
    $('s-ports').textContent = fmt(val(/^mediagw_rtp_ports_free (\S+)$/m));
    $('s-late').textContent = fmt(val(/^mediagw_mix_late_ticks_total (\S+)$/m));
    const pools = ['rtp', 'enhanced_rtp', 'conference'].map((p) =>
      p + ' ' + fmt(val(new RegExp('^mediagw_resources_in_use\\{pool="' + p + '"\\} (\\S+)$', 'm'))));
    $('s-pools').textContent = pools.join(' · ');
  } catch (e) { /* the next poll tries again */ }
}

function fmt(n) { return Number.isNaN(n) ? '–' : String(n); }

async function health() {
  try {
    const res = await fetch('/healthz');
    $('s-drain').classList.toggle('hidden', res.status !== 503);
  } catch (e) { /* offline */ }
}

// ---------- events ----------

function setLive(on) {
  if (on && !state.live) { state.seedTalking = true; poll(); }
  state.live = on;
  $('live').className = 'dot ' + (on ? 'on' : 'off');
  setStatus(on ? 'live' : 'polling');
}

function setStatus(text) { $('live-text').textContent = text; }

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let streamGen = 0;

async function stream() {
  const gen = ++streamGen;
  let backoff = 1000;
  while (gen === streamGen) {
    try {
      const res = await api.call('GET', '/v1/events');
      const ct = res.headers.get('Content-Type') || '';
      if (!res.ok || !ct.startsWith('text/event-stream')) throw new Error('no event stream (' + res.status + ')');
      setLive(true);
      backoff = 1000;
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done || gen !== streamGen) break;
        buf += dec.decode(value, { stream: true }).replace(/\r\n/g, '\n');
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          handleBlock(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
    } catch (e) {
      if (e instanceof AuthError) return;
    }
    setLive(false);
    await sleep(backoff);
    backoff = Math.min(backoff * 2, 15000);
  }
}

function handleBlock(block) {
  let type = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) type = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (!data.length) return;
  let ev;
  try { ev = JSON.parse(data.join('\n')); } catch (e) { return; }
  handleEvent(type, ev);
}

function handleEvent(type, ev) {
  const conn = ev.ConnectionId, conf = ev.ConferenceId;
  switch (type) {
    case 'StartTalking': state.talking.add(conn); touchConference(conf); break;
    case 'StopTalking': state.talking.delete(conn); touchConference(conf); break;
    case 'ConnectionReleased':
      state.conns.delete(conn);
      state.talking.delete(conn);
      for (const cf of state.confs.values()) cf.Members = cf.Members.filter((m) => m.ConnectionId !== conn);
      for (const [id, op] of state.ops) if (op.target === conn) state.ops.delete(id);
      buildRows();
      break;
    case 'ConferenceReleased':
      state.confs.delete(conf);
      for (const [id, op] of state.ops) if (op.target === conf) state.ops.delete(id);
      buildRows();
      break;
    default:
      if (/_(Complete|Failed)$/.test(type) && ev.OperationId) { state.ops.delete(ev.OperationId); schedule(); }
  }
  logEvent(type, ev);
}

// touchConference re-renders the rows in view (a talker changed): the
// signature check leaves every other row as it is.
function touchConference() { schedule(); }

function logEvent(type, ev, failed) {
  const li = document.createElement('li');
  const fail = failed || /_Failed$/.test(type) || (ev.ResultCode && ev.ResultCode !== '0');
  if (fail) li.className = 'fail';
  const fields = Object.keys(ev).sort().map((k) => esc(k) + '=' + esc(ev[k])).join(' ');
  li.innerHTML = `<time>${new Date().toLocaleTimeString()}</time> <b>${esc(type)}</b> ${fields}`;
  const list = $('events');
  list.insertBefore(li, list.firstChild);
  while (list.childElementCount > MAX_EVENTS) list.removeChild(list.lastChild);
}

// ---------- actions ----------

let toastTimer;
function toast(text, fail) {
  const t = $('toast');
  t.textContent = text;
  t.className = 'toast' + (fail ? ' fail' : '');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.classList.add('hidden'), 4000);
}

async function act(name, params, label) {
  let r;
  try {
    r = await api.action(name, params);
  } catch (e) {
    if (!(e instanceof AuthError)) toast(label + ': ' + e.message, true);
    return null;
  }
  const ok = r.ResultCode === '0';
  toast(`${label}: ResultCode ${r.ResultCode}${r.ResultText ? ' (' + r.ResultText + ')' : ''}`, !ok);
  logEvent(name, { ...params, ResultCode: r.ResultCode }, !ok);
  poll();
  return r;
}

viewport.addEventListener('click', async (e) => {
  const b = e.target.closest('button[data-act]');
  if (!b) return;
  const conn = b.dataset.conn, conf = b.dataset.conf;
  switch (b.dataset.act) {
    case 'mute': await act('SetConfereeAttribute', { ConferenceId: conf, ConnectionId: conn, Mute: true }, 'Mute ' + conn); break;
    case 'unmute': await act('SetConfereeAttribute', { ConferenceId: conf, ConnectionId: conn, Mute: false }, 'Unmute ' + conn); break;
    case 'kick': await act('DeleteConnection', { ConnectionId: conn }, 'Kick ' + conn); break;
    case 'end':
      if (confirm('End conference ' + conf + ' and hang up every member?')) await act('DeleteConnection', { ConferenceId: conf }, 'End ' + conf);
      break;
    case 'play': {
      const file = prompt('Prompt file to play to conference ' + conf + ' (under media.dir):');
      if (file) {
        const r = await act('Play', { ConferenceId: conf, Prompt1: file }, 'Play ' + file);
        if (r && r.OperationId) state.ops.set(r.OperationId, { action: 'Play', target: conf });
      }
      break;
    }
    case 'record': {
      const r = await act('Record', { ConferenceId: conf }, 'Record ' + conf);
      if (r && r.OperationId) { state.ops.set(r.OperationId, { action: 'Record', target: conf, conn: r.ConnectionId }); schedule(); }
      break;
    }
    case 'stoprecord':
      for (const [id, op] of state.ops) {
        if (op.target === conf && op.action === 'Record') {
          await act('StopMediaOperation', { OperationId: id, ConferenceId: conf, ConnectionId: op.conn }, 'Stop recording ' + conf);
        }
      }
      break;
  }
});

// ---------- login ----------

function showLogin(error) {
  $('login').classList.remove('hidden');
  $('login-error').textContent = error || '';
  $('token').focus();
}

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  api.token = $('token').value.trim();
  sessionStorage.setItem('mediagw.token', api.token);
  $('login').classList.add('hidden');
  $('logout').classList.toggle('hidden', !api.token);
  start();
});

$('logout').addEventListener('click', () => {
  sessionStorage.removeItem('mediagw.token');
  api.token = '';
  streamGen++;
  showLogin('');
});

// ---------- start ----------

let timers = [];
function start() {
  for (const t of timers) clearInterval(t);
  timers = [setInterval(() => { if (!document.hidden) poll(); }, POLL_MS),
    setInterval(() => { if (!document.hidden) { pollMetrics(); health(); } }, METRICS_MS),
    setInterval(schedule, 1000)]; // ages
  poll();
  pollMetrics();
  health();
  stream();
}

$('logout').classList.toggle('hidden', !api.token);
start();
