// Hostlink studio: talks to the `hostlink serve` that served it (same origin) through its JSON API, and follows
// the node's call stream (server-sent events read with fetch, so a bearer token can be sent). No dependencies.
const $ = (sel) => document.querySelector(sel);
const TOKEN_KEY = 'hostlink-token';
let token = sessionStorage.getItem(TOKEN_KEY) ?? '';
if (location.hash.startsWith('#token=')) {
  token = decodeURIComponent(location.hash.slice(7));
  sessionStorage.setItem(TOKEN_KEY, token);
  history.replaceState(null, '', location.pathname);
}

/** fetch + JSON; throws an Error with the node's one-line message. */
async function api(path, init = {}) {
  const headers = { ...(init.headers ?? {}) };
  if (token) headers.authorization = `Bearer ${token}`;
  if (init.json !== undefined) {
    headers['content-type'] = 'application/json';
    init = { ...init, method: 'POST', body: JSON.stringify(init.json) };
  }
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401) $('#token-form').hidden = false;
  const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
  return body;
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}
const short = (hex) => `${hex.slice(0, 10)}…${hex.slice(-6)}`;
const ms = (v) => (v < 10 ? v.toFixed(2) : v.toFixed(0));

async function refreshCodes(select) {
  const codes = await api('/api/codes');
  $('#codes').replaceChildren(...codes.map((c) => el('li', { title: c.code_hash, onclick: () => chooseCode(c.code_hash) }, `${short(c.code_hash)}  (${c.bytes} B)`)));
  const current = select ?? $('#code').value;
  $('#code').replaceChildren(...codes.map((c) => el('option', { value: c.code_hash, selected: c.code_hash === current }, short(c.code_hash))));
  if ($('#code').value) await loadMethods($('#code').value);
}

async function chooseCode(hash) {
  $('#code').value = hash;
  await loadMethods(hash);
}

async function loadMethods(hash) {
  const code = await api(`/api/codes/${hash}`);
  $('#methods').replaceChildren(...code.methods.map((m) => el('option', { value: m })));
  if (!code.methods.includes($('#method').value)) $('#method').value = code.methods[0] ?? '';
}

async function deployed(promise) {
  const out = $('#deploy-result');
  out.className = 'muted';
  out.textContent = 'deploying…';
  try {
    const r = await promise;
    out.textContent = `deployed ${short(r.code_hash)} (${r.bytes} bytes)`;
    await refreshCodes(r.code_hash);
  } catch (e) {
    out.className = 'error';
    out.textContent = e.message;
  }
}

$('#deploy-file').onclick = () => {
  const file = $('#wasm-file').files[0];
  if (!file) return void ($('#deploy-result').textContent = 'choose a .wasm file first');
  void deployed(file.arrayBuffer().then((bytes) => api('/api/codes', { method: 'POST', headers: { 'content-type': 'application/wasm' }, body: bytes })));
};
$('#deploy-example').onclick = () => void deployed(api(`/api/examples/${encodeURIComponent($('#example').value)}/deploy`, { method: 'POST' }));
$('#code').onchange = () => void loadMethods($('#code').value);

$('#call').onclick = async () => {
  const button = $('#call');
  const err = $('#call-error');
  err.hidden = true;
  const input = $('#input').value.trim();
  try {
    if (input) JSON.parse(input);
  } catch (e) {
    err.textContent = `input is not valid JSON: ${e.message}`;
    err.hidden = false;
    return;
  }
  const body = { code: $('#code').value, method: $('#method').value.trim(), context: $('#context').value.trim() || 'default', input };
  if ($('#gas').value.trim()) body.gas = $('#gas').value.trim();
  if ($('#mode').value) body.mode = $('#mode').value;
  button.disabled = true;
  try {
    const record = await api('/api/calls', { json: body });
    const full = await api(`/api/calls/${record.call_id}`);
    showResult(full);
    void refreshContexts();
    void refreshStatus();
    void showState(record.outcome.context);
  } catch (e) {
    err.textContent = e.message;
    err.hidden = false;
  } finally {
    button.disabled = false;
  }
};

function showResult(r) {
  const o = r.outcome;
  $('#result').hidden = false;
  $('#result-code').textContent = o.result;
  $('#result-code').className = `badge ${o.result}`;
  $('#result-value').textContent = o.result === 'return' ? o.value : o.message;
  const facts = [
    ['call', `#${r.call_id} ${r.method} (${r.mode})`],
    ['applied', String(o.applied)],
    ['gas used', o.gas_used],
    ['state root', o.state_root],
    ['context', o.context],
    ['time', `queue ${ms(r.durations_ms.queue)} ms · vm ${ms(r.durations_ms.vm)} ms · apply ${ms(r.durations_ms.apply)} ms`],
    ['round trips', String(r.round_trips)],
  ];
  $('#result-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  $('#result-logs').textContent = o.logs.join('\n') || '(none)';
  $('#result-events').textContent = o.events.map((e) => `${e.kind} ${e.data}${e.handler ? ` → ${e.handler}` : ''}`).join('\n') || '(none)';
  $('#result-writes').textContent = o.writes.map((w) => `${w.key} = ${w.value ?? '(deleted)'}`).join('\n') || '(none)';
  // Outcome fields this page does not know yet (e.g. the votes of non-deterministic blocks) are shown as JSON.
  const known = new Set(['result', 'value', 'message', 'fingerprint', 'context', 'applied', 'state_root', 'gas_used', 'logs', 'events', 'writes', 'omitted_bytes']);
  const extra = Object.fromEntries(Object.entries(o).filter(([k]) => !known.has(k)));
  $('#result-more').hidden = Object.keys(extra).length === 0;
  $('#result-extra').textContent = JSON.stringify(extra, null, 2);
  const rows = r.trace.requests.map((t, i) => el('tr', {}, el('td', {}, i + 1), el('td', {}, t.method), el('td', {}, t.requestBytes), el('td', {}, t.responseBytes), el('td', {}, ms(t.atMs)), el('td', {}, ms(t.hostMs))));
  if (r.trace.dropped) rows.push(el('tr', {}, el('td', { colSpan: 6 }, `… ${r.trace.dropped} more requests not kept`)));
  $('#trace tbody').replaceChildren(...rows);
}

async function refreshContexts() {
  const contexts = await api('/api/contexts');
  $('#contexts').replaceChildren(...contexts.map((c) => el('li', { title: `root ${c.root}`, onclick: () => void showState(c.context) }, short(c.context))));
}

async function showState(context) {
  const s = await api(`/api/contexts/${context}/state`);
  $('#state').hidden = false;
  $('#state-context').textContent = short(s.context);
  $('#state-root').textContent = s.root;
  $('#state-entries').replaceChildren(...s.entries.map((e) => el('tr', {}, el('td', {}, e.key), el('td', {}, e.value))));
}

function addRecent(r) {
  const d = r.durations_ms;
  const row = el(
    'tr',
    { onclick: () => void api(`/api/calls/${r.call_id}`).then(showResult) },
    el('td', {}, r.call_id),
    el('td', {}, r.method),
    el('td', { className: r.outcome.result }, r.outcome.result),
    el('td', {}, r.outcome.gas_used),
    el('td', {}, ms(d.queue)),
    el('td', {}, ms(d.vm)),
    el('td', {}, ms(d.apply)),
    el('td', {}, r.round_trips),
  );
  const body = $('#recent tbody');
  body.prepend(row);
  while (body.children.length > 100) body.lastChild.remove();
}

/** One line of the node log: VM processes launched, exited, crashed; calls that failed without an outcome or whose follow-ups halted. */
function addLog(e) {
  const time = e.at.slice(11, 23);
  const text =
    e.event === 'launched' ? `VM ${e.pid} launched (${e.mode})`
    : e.event === 'exited' ? `VM ${e.pid} exited (${e.signal ?? `code ${e.exit_code}`})`
    : e.event === 'crashed' ? `VM ${e.pid} crashed during call #${e.call_id}: ${e.last_line || e.signal || e.exit_code}`
    : e.event === 'call_halted' ? `call #${e.call_id} ${e.method}: follow-ups halted at ${e.follow_ups_halted.kind} ${e.follow_ups_halted.method} (${e.follow_ups_halted.reason}); ${e.follow_ups_halted.not_run} did not run`
    : `call #${e.call_id} ${e.method} failed: ${e.error}`;
  const list = $('#node-log');
  list.prepend(el('li', { className: e.event, title: text }, `${time}  ${text}`));
  while (list.children.length > 200) list.lastChild.remove();
}

/** Follows /api/events (text/event-stream) with fetch; reconnects after a pause when it ends. */
async function follow() {
  for (;;) {
    try {
      const res = await fetch('/api/events', { headers: token ? { authorization: `Bearer ${token}` } : {} });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      $('#live').textContent = '● live';
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame.split('\n').find((l) => l.startsWith('data: '));
          if (frame.startsWith('event: call') && data) addRecent(JSON.parse(data.slice(6)));
          else if (frame.startsWith('event: vm') && data) addLog(JSON.parse(data.slice(6)));
        }
      }
    } catch {
      // shown below; retried
    }
    $('#live').textContent = '○ reconnecting';
    await new Promise((r) => setTimeout(r, 2000));
  }
}

$('#token-form').onsubmit = (e) => {
  e.preventDefault();
  token = $('#token').value;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('#token-form').hidden = true;
  void start();
};

async function refreshStatus() {
  const info = await api('/api/info');
  $('#status').textContent = `node ${info.version} · pool ${info.pool ? `${info.pool.workers} VMs, ${info.pool.idle} idle` : 'starts with the first call'}`;
}

async function start() {
  try {
    await refreshStatus();
    const examples = await api('/api/examples');
    $('#example').replaceChildren(...examples.map((x) => el('option', { value: x.name }, `${x.name} (${x.bytes} B)`)));
    const recent = await api('/api/calls?limit=100');
    for (const r of recent.reverse()) addRecent(r);
    await Promise.all([refreshCodes(), refreshContexts()]);
    void follow();
  } catch (e) {
    $('#status').textContent = e.message;
  }
}
void start();
