// The pauselog admin page: table maps, their queued records and catch-up
// errors, through the engine's admin API (docs/admin-api.md). Plain
// JavaScript, no build step. Every text that comes from the engine (keys,
// payloads, error texts) enters the page as a text node, never as HTML.
'use strict';

const REFRESH_MS = 2000;
const PAGE_LIMIT = 50;
/** The payload dialog shows at most this many bytes. */
const PAYLOAD_SHOWN_BYTES_MAX = 64 * 1024;

const $ = (id) => document.getElementById(id);
const csrfToken = document.querySelector('meta[name="pauselog-csrf"]').content;

class ApiFailure extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

// ------------------------------------------------------------- requests

function apiUrl(path, params) {
  const url = new URL(`../v1/${path}`, document.baseURI);
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined) url.searchParams.set(name, value);
  }
  return url;
}

/** One API call; resolves to the JSON answer or throws an ApiFailure. */
async function call(method, path, body, params) {
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET') {
    init.headers['Content-Type'] = 'application/json';
    init.headers['X-Pauselog-Csrf'] = csrfToken;
    init.body = JSON.stringify(body || {});
  }
  const response = await fetch(apiUrl(path, params), init);
  if (response.status === 401) {
    window.location.assign('login');
    throw new ApiFailure('The session has ended; log in again.', 'unauthorized');
  }
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    const error = answer && answer.error;
    throw new ApiFailure(error ? error.message : `${response.status} ${response.statusText}`, error && error.code);
  }
  return answer;
}

const mapPath = (name, rest) => `maps/${encodeURIComponent(name)}${rest ? `/${rest}` : ''}`;

// ------------------------------------------------------------ formatting

const numbers = new Intl.NumberFormat('en-US');
const count = (n) => numbers.format(n);

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  const s = Math.floor(ms / 1000);
  if (s < 1) return `${ms} ms`;
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

const pad = (n, width = 2) => String(n).padStart(width, '0');

/** An RFC 3339 time of the engine as local date and time. */
function time(text) {
  if (!text) return '—';
  const t = new Date(text);
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
}

const STATE_NAMES = { Running: 'Running', Paused: 'Paused', CatchingUp: 'Catching up' };
const REASONS = {
  Manual: 'Paused by an operator',
  Window: 'Maintenance window',
  DestinationUnavailable: 'Destination unavailable (rule)',
};
const LIMITS = { Size: 'size cap', PauseAge: 'pause age cap' };

// ------------------------------------------------------------------- DOM

/** An element with properties, attributes and children; strings become text nodes. */
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (name === 'class') node.className = value;
    else if (name === 'data') Object.assign(node.dataset, value);
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name in node) node[name] = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

/** Replaces the children of `node`, leaving out the missing ones. */
function show(node, ...children) {
  node.replaceChildren(...children.filter((child) => child !== null && child !== undefined && child !== false));
}

const sub = (text) => el('span', { class: 'sub' }, text);
const figure = (text) => el('span', { class: 'figure' }, text);

let noticeTimer = null;
function notify(message, isError) {
  const notice = $('notice');
  notice.textContent = message;
  notice.className = isError ? 'notice error' : 'notice';
  notice.setAttribute('role', isError ? 'alert' : 'status');
  notice.hidden = false;
  clearTimeout(noticeTimer);
  if (!isError) noticeTimer = setTimeout(() => { notice.hidden = true; }, 8000);
}

// ----------------------------------------------------------------- state

function freshList(key) {
  return { key: key || null, items: [], next: null, lastAfter: null, total: 0, selected: new Set() };
}

const view = {
  maps: new Map(),
  rows: new Map(),
  selected: null,
  tab: 'queued',
  queued: freshList(),
  errors: freshList(),
  payloads: new Map(),
  watchedJobs: new Set(),
  firstRender: true,
  refreshing: false,
  timer: null,
};

// ------------------------------------------------------------ maps table

function makeRow(name) {
  const cell = (className) => el('td', className ? { class: className } : {});
  const cells = {
    name: cell(), state: cell(), pause: cell(), queued: cell('num'), oldest: cell('num'),
    caps: cell(), catchup: cell(), errors: cell('num'), actions: cell(),
  };
  const button = (action, label, onclick) => el('button', { type: 'button', data: { action }, onclick }, label);
  const buttons = {
    open: el('button', { type: 'button', class: 'link', data: { action: 'open' }, onclick: () => openMap(name) }, name),
    pause: button('pause', 'Pause', () => pauseMap(name)),
    resume: button('resume', 'Resume…', () => resumeMap(name)),
    skip: button('skip', 'Skip to live…', () => skipMap(name)),
  };
  cells.name.append(buttons.open);
  cells.actions.append(el('div', { class: 'actions' }, buttons.pause, buttons.resume, buttons.skip));
  const row = el('tr', { data: { map: name } }, ...Object.values(cells));
  return { row, cells, buttons };
}

function fillRow(entry, s) {
  const { cells, buttons } = entry;
  show(cells.state, 
    el('span', { class: `badge ${s.state}` }, STATE_NAMES[s.state] || s.state),
    s.blocked ? el('div', {}, el('span', { class: 'badge blocked' }, `Blocked: ${LIMITS[s.blocked] || s.blocked}`)) : null,
  );
  if (s.state === 'Paused') {
    const window = s.pause_window ? sub(`${time(s.pause_window.start)} – ${time(s.pause_window.end)}`) : null;
    show(cells.pause, REASONS[s.pause_reason] || s.pause_reason || 'Paused', window, sub(`since ${time(s.paused_since)}`));
  } else {
    show(cells.pause, '—');
  }
  show(cells.queued, figure(count(s.queued_records)), sub(bytes(s.queued_bytes)));
  show(cells.oldest, duration(s.oldest_queued_age_ms));
  show(cells.caps, 
    `${bytes(s.bytes_left)} of queue`,
    s.pause_time_left_ms !== null ? sub(`${duration(s.pause_time_left_ms)} of pause`) : null,
  );
  if (s.state === 'CatchingUp') {
    // A stalled catch-up has no meaningful ETA: its last rate is stale.
    const eta = s.eta_ms !== null && !s.last_error ? `, ETA ${duration(s.eta_ms)}` : '';
    show(cells.catchup, 
      `${count(s.replayed)} replayed, ${count(s.remaining)} remaining`,
      sub(`${count(Math.round(s.drain_rate_per_sec))} records/s${eta}`),
      sub(`${s.lanes_busy} ${s.lanes_busy === 1 ? 'lane' : 'lanes'} busy`),
      s.last_error ? sub(`Stalled: ${s.last_error}`) : null,
    );
  } else {
    show(cells.catchup, '—');
  }
  show(cells.errors, figure(count(s.error_records)), s.error_records ? sub(bytes(s.error_bytes)) : null);
  buttons.pause.hidden = s.state === 'Paused';
  buttons.resume.hidden = s.state !== 'Paused';
  buttons.skip.hidden = s.state !== 'CatchingUp';
  entry.row.classList.toggle('selected', view.selected === s.name);
}

function renderMaps(maps) {
  const tbody = $('maps').tBodies[0];
  const names = new Set(maps.map((s) => s.name));
  for (const [name, entry] of view.rows) {
    if (!names.has(name)) {
      entry.row.remove();
      view.rows.delete(name);
    }
  }
  maps.forEach((status, index) => {
    let entry = view.rows.get(status.name);
    if (!entry) {
      entry = makeRow(status.name);
      view.rows.set(status.name, entry);
    }
    // Rows only move when the order changes, so a focused button keeps its focus.
    if (tbody.children[index] !== entry.row) tbody.insertBefore(entry.row, tbody.children[index] || null);
    fillRow(entry, status);
  });
  view.maps = new Map(maps.map((s) => [s.name, s]));
  $('no-maps').hidden = maps.length > 0;
}

async function refresh() {
  if (view.refreshing) return;
  view.refreshing = true;
  try {
    const list = await call('GET', 'maps');
    renderMaps(list.maps);
    if (view.firstRender) {
      view.firstRender = false;
      performance.mark('pauselog:maps-rendered');
    }
    $('refreshed').textContent = `Updated ${time(new Date().toISOString())}`;
    if (view.selected && !view.maps.has(view.selected)) closeDetail();
    if (view.selected) await refreshDetail();
  } catch (error) {
    if (error.code !== 'unauthorized') notify(`Could not refresh: ${error.message}`, true);
  } finally {
    view.refreshing = false;
  }
}

function schedule() {
  clearTimeout(view.timer);
  if (!$('auto-refresh').checked) return;
  view.timer = setTimeout(async () => {
    await refresh();
    schedule();
  }, REFRESH_MS);
}

// ----------------------------------------------------------- map actions

async function act(success, action) {
  try {
    const result = await action();
    if (success) notify(typeof success === 'function' ? success(result) : success);
    return result;
  } catch (error) {
    notify(error.message, true);
    return null;
  } finally {
    await refresh();
  }
}

function pauseMap(name) {
  return act(`${name} is paused: new records are queued.`, () => call('POST', mapPath(name, 'pause'), {}));
}

/** Shows a dialog; resolves to true when its confirm button closed it. */
function ask(dialog) {
  return new Promise((resolve) => {
    dialog.returnValue = '';
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true });
    dialog.showModal();
  });
}

async function resumeMap(name) {
  const dialog = $('resume-dialog');
  const status = view.maps.get(name);
  dialog.querySelector('.map-name').textContent = name;
  dialog.querySelector('.queued-count').textContent =
    `${count(status ? status.queued_records : 0)} records (${bytes(status ? status.queued_bytes : 0)})`;
  dialog.querySelector('input[value="CatchUp"]').checked = true;
  if (!(await ask(dialog))) return;
  const mode = dialog.querySelector('input[name="mode"]:checked').value;
  const said = {
    CatchUp: `${name} is catching up.`,
    SkipToLivePreserve: `${name} is live; its queue is kept as catch-up errors.`,
    SkipToLiveDiscard: `${name} is live; its queue was discarded.`,
  };
  await act(said[mode], () => call('POST', mapPath(name, 'resume'), { mode }));
  if (view.selected === name) reloadLists();
}

async function skipMap(name) {
  const dialog = $('skip-dialog');
  const status = view.maps.get(name);
  dialog.querySelector('.map-name').textContent = name;
  dialog.querySelector('.remaining-count').textContent = `${count(status ? status.remaining : 0)} records are`;
  dialog.querySelector('input[value="true"]').checked = true;
  if (!(await ask(dialog))) return;
  const preserve = dialog.querySelector('input[name="preserve"]:checked').value === 'true';
  const said = preserve ? `${name} is live; the rest is kept as catch-up errors.` : `${name} is live; the rest was discarded.`;
  await act(said, () => call('POST', mapPath(name, 'skip-to-live'), { preserve }));
  if (view.selected === name) reloadLists();
}

function confirmAction(title, message, ok) {
  const dialog = $('confirm-dialog');
  $('confirm-title').textContent = title;
  dialog.querySelector('.message').textContent = message;
  $('confirm-ok').textContent = ok;
  return ask(dialog);
}

// ---------------------------------------------------------------- detail

function openMap(name) {
  view.selected = name;
  $('detail').hidden = false;
  $('detail-title').textContent = name;
  for (const [rowName, entry] of view.rows) entry.row.classList.toggle('selected', rowName === name);
  view.payloads.clear();
  $('queued-key').value = '';
  $('errors-key').value = '';
  view.queued = freshList();
  view.errors = freshList();
  showTab(view.tab, false);
  reloadLists();
  loadJobs();
}

function closeDetail() {
  view.selected = null;
  $('detail').hidden = true;
}

function showTab(tab, focus) {
  view.tab = tab;
  for (const name of ['queued', 'errors']) {
    const selected = name === tab;
    const button = $(`tab-${name}`);
    button.setAttribute('aria-selected', String(selected));
    button.tabIndex = selected ? 0 : -1;
    $(`panel-${name}`).hidden = !selected;
    if (selected && focus) button.focus();
  }
}

function reloadLists() {
  loadList('queued', true);
  loadList('errors', true);
}

async function refreshDetail() {
  const status = view.maps.get(view.selected);
  for (const name of ['queued', 'errors']) {
    const list = view[name];
    if (list.key === null) {
      list.total = name === 'queued' ? status.queued_records : status.error_records;
    } else {
      const page = await call('GET', mapPath(view.selected, name), null, { key: list.key, limit: 1 });
      if (view[name] === list) list.total = page.total;
    }
    renderSummary(name);
  }
  await loadJobs();
}

function renderSummary(name) {
  const list = view[name];
  const what = name === 'queued' ? 'queued records' : 'catch-up errors';
  const summary = $(`${name}-summary`);
  show(summary,
    `Showing ${count(list.items.length)} of `,
    el('strong', { id: `${name}-total` }, count(list.total)),
    ` ${what}`,
    list.key !== null ? ' with the integration key ' : null,
    list.key !== null ? el('code', {}, list.key) : null,
    '.',
  );
  $(`${name}-more`).hidden = !(list.next || list.items.length < list.total);
  if (name === 'errors') {
    $('retry-selected').disabled = list.selected.size === 0;
    $('discard-selected').disabled = list.selected.size === 0;
  }
}

/** Loads the first page (reset) or the next one of a list. */
async function loadList(name, reset) {
  const map = view.selected;
  if (reset) {
    view[name] = freshList(view[name].key);
    $(name).tBodies[0].replaceChildren();
    if (name === 'errors') $('errors-select-all').checked = false;
  }
  const list = view[name];
  const after = list.next || list.lastAfter;
  const params = { limit: PAGE_LIMIT, key: list.key, after };
  performance.mark(`pauselog:${name}-start`);
  let page;
  try {
    page = await call('GET', mapPath(map, name), null, params);
  } catch (error) {
    notify(`Could not load the ${name === 'queued' ? 'queued records' : 'catch-up errors'}: ${error.message}`, true);
    return;
  }
  if (view[name] !== list || view.selected !== map) return;
  const lastSeq = list.items.length ? seqOf(list.items[list.items.length - 1]) : 0;
  const fresh = page.items.filter((item) => seqOf(item) > lastSeq);
  const tbody = $(name).tBodies[0];
  for (const item of fresh) {
    // Where the record was found: its payload is read with the same query.
    const position = { after: after || null, index: page.items.indexOf(item) };
    list.items.push(item);
    tbody.append(name === 'queued' ? queuedRow(item, position) : errorRow(item));
  }
  // Past the last page, "Load more" asks this page again for what was added since.
  list.lastAfter = after || null;
  list.next = page.next;
  list.total = page.total;
  renderSummary(name);
  performance.measure(`pauselog:${name}-page`, `pauselog:${name}-start`);
  if (!reset && fresh.length === 0) notify(`No more ${name === 'queued' ? 'queued records' : 'catch-up errors'} to load.`);
}

const seqOf = (item) => (item.record ? item.record.seq : item.seq);

function queuedRow(item, position) {
  const viewAs = (mode) => () => showPayload(item, position, mode);
  const empty = item.payload_bytes === 0;
  return el('tr', { data: { seq: String(item.seq) } },
    el('td', { class: 'num' }, String(item.seq)),
    el('td', { class: 'key' }, item.key),
    el('td', {}, item.op),
    el('td', { class: 'num' }, bytes(item.payload_bytes)),
    el('td', {}, time(item.queued_at)),
    el('td', {}, el('div', { class: 'actions' },
      el('button', { type: 'button', data: { action: 'text' }, disabled: empty, onclick: viewAs('text') }, 'Text'),
      el('button', { type: 'button', data: { action: 'hex' }, disabled: empty, onclick: viewAs('hex') }, 'Hex'))));
}

function errorRow(entry) {
  const seq = entry.record.seq;
  const box = el('input', {
    type: 'checkbox',
    'aria-label': `Select seq ${seq}`,
    onchange: (event) => {
      if (event.target.checked) view.errors.selected.add(seq);
      else view.errors.selected.delete(seq);
      renderSummary('errors');
    },
  });
  return el('tr', { data: { seq: String(seq) } },
    el('td', {}, box),
    el('td', { class: 'num' }, String(seq)),
    el('td', { class: 'key' }, entry.record.key),
    el('td', {}, entry.record.op),
    el('td', {}, entry.reason),
    el('td', { class: 'error-text' }, entry.last_error === null ? '—' : entry.last_error),
    el('td', { class: 'num' }, String(entry.attempts)),
    el('td', {}, time(entry.first_failed_at)),
    el('td', {}, time(entry.last_failed_at)));
}

// --------------------------------------------------------------- payload

function fromBase64(text) {
  const raw = atob(text);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) out[i] = raw.charCodeAt(i);
  return out;
}

function hexDump(data) {
  const lines = [];
  for (let offset = 0; offset < data.length; offset += 16) {
    const row = data.subarray(offset, offset + 16);
    const hex = Array.from(row, (b) => pad(b.toString(16))).join(' ');
    const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${pad(offset.toString(16), 8)}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join('\n');
}

/** Shows a queued record's payload: its page is read again with payloads. */
async function showPayload(item, position, mode) {
  const map = view.selected;
  const cacheKey = `${map}\u0000${item.seq}`;
  if (!view.payloads.has(cacheKey)) {
    const params = { limit: position.index + 1, payload: 'true', key: view.queued.key, after: position.after };
    let page;
    try {
      page = await call('GET', mapPath(map, 'queued'), null, params);
    } catch (error) {
      notify(`Could not read the payload: ${error.message}`, true);
      return;
    }
    for (const record of page.items) view.payloads.set(`${map}\u0000${record.seq}`, fromBase64(record.payload_base64 || ''));
  }
  const payload = view.payloads.get(cacheKey);
  if (!payload) {
    notify(`Record ${item.seq} is no longer queued: it was delivered or moved since the page was loaded.`, true);
    return;
  }
  const dialog = $('payload-dialog');
  $('payload-title').textContent = `Payload of seq ${item.seq}`;
  const shown = payload.subarray(0, PAYLOAD_SHOWN_BYTES_MAX);
  const cut = payload.length > shown.length ? `, the first ${bytes(shown.length)} shown` : '';
  $('payload-size').textContent = `${bytes(payload.length)}${cut}`;
  const render = (as) => {
    $('payload-body').textContent = as === 'hex' ? hexDump(shown) : new TextDecoder('utf-8').decode(shown);
    $('payload-text').setAttribute('aria-pressed', String(as === 'text'));
    $('payload-hex').setAttribute('aria-pressed', String(as === 'hex'));
  };
  $('payload-text').onclick = () => render('text');
  $('payload-hex').onclick = () => render('hex');
  render(mode);
  dialog.showModal();
}

// ---------------------------------------------------------------- errors

function selection(all) {
  return all ? { kind: 'all' } : { kind: 'seqs', seqs: Array.from(view.errors.selected).sort((a, b) => a - b) };
}

async function retry(all) {
  const map = view.selected;
  const forced = $('retry-forced').checked;
  const job = await act(
    (started) => `Retry job ${started.id} started for ${count(started.total)} catch-up errors of ${map}.`,
    () => call('POST', mapPath(map, 'retry'), { selection: selection(all), forced }),
  );
  if (job) {
    view.watchedJobs.add(job.id);
    await loadJobs();
  }
}

async function discard(all) {
  const map = view.selected;
  const what = all ? `all ${count(view.errors.total)} catch-up errors` : `${count(view.errors.selected.size)} selected catch-up errors`;
  const sure = await confirmAction(`Discard catch-up errors of ${map}?`,
    `Discard ${what}? Their records are deleted and never delivered.`, 'Discard');
  if (!sure) return;
  await act((answer) => `${count(answer.discarded)} catch-up errors of ${map} discarded.`,
    () => call('POST', mapPath(map, 'discard-errors'), { selection: selection(all) }));
  await loadList('errors', true);
}

// ------------------------------------------------------------------ jobs

async function loadJobs() {
  const map = view.selected;
  if (!map) return;
  const { jobs } = await call('GET', 'jobs');
  const mine = jobs.filter((job) => job.map === map).reverse();
  $('jobs-none').hidden = mine.length > 0;
  $('jobs').hidden = mine.length === 0;
  $('jobs').tBodies[0].replaceChildren(...mine.map(jobRow));
  let finished = false;
  for (const job of jobs) {
    if (job.done && view.watchedJobs.delete(job.id)) finished = true;
  }
  if (finished && view.selected === map) await loadList('errors', true);
}

function jobRow(job) {
  const handled = job.delivered + job.failed + job.skipped;
  const stateText = (job.cancelled ? 'Cancelled' : job.done ? 'Done' : 'Running') + (job.forced ? ' · forced' : '');
  const cancel = job.done
    ? null
    : el('button', { type: 'button', data: { action: 'cancel' }, onclick: () => act(`Retry job ${job.id} cancelled.`, () => call('POST', `jobs/${job.id}/cancel`, {})) }, 'Cancel');
  return el('tr', { data: { job: String(job.id) } },
    el('td', { class: 'num' }, String(job.id)),
    el('td', {}, time(job.started_at)),
    el('td', {}, el('progress', { max: Math.max(job.total, 1), value: handled }), ` ${count(handled)} of ${count(job.total)}`),
    el('td', { class: 'num' }, count(job.delivered)),
    el('td', { class: 'num' }, count(job.failed)),
    el('td', { class: 'num' }, count(job.skipped)),
    el('td', {}, stateText),
    el('td', {}, cancel));
}

// ---------------------------------------------------------------- wiring

function wire() {
  $('auto-refresh').addEventListener('change', schedule);
  $('refresh-now').addEventListener('click', refresh);
  $('logout').addEventListener('click', async () => {
    await fetch(new URL('logout', document.baseURI), {
      method: 'POST', credentials: 'same-origin', headers: { 'X-Pauselog-Csrf': csrfToken },
    }).catch(() => null);
    window.location.assign('login');
  });
  for (const name of ['queued', 'errors']) {
    $(`tab-${name}`).addEventListener('click', () => showTab(name, false));
    $(`${name}-filter`).addEventListener('submit', (event) => {
      event.preventDefault();
      const key = $(`${name}-key`).value;
      view[name] = freshList(key === '' ? null : key);
      loadList(name, true);
    });
    $(`${name}-clear`).addEventListener('click', () => {
      $(`${name}-key`).value = '';
      view[name] = freshList();
      loadList(name, true);
    });
    $(`${name}-more`).addEventListener('click', () => loadList(name, false));
  }
  $('tab-queued').parentElement.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowRight' || event.key === 'ArrowLeft') {
      showTab(view.tab === 'queued' ? 'errors' : 'queued', true);
      event.preventDefault();
    }
  });
  $('errors-select-all').addEventListener('change', (event) => {
    const rows = $('errors').tBodies[0].querySelectorAll('input[type="checkbox"]');
    for (const box of rows) box.checked = event.target.checked;
    view.errors.selected = event.target.checked ? new Set(view.errors.items.map(seqOf)) : new Set();
    renderSummary('errors');
  });
  $('retry-selected').addEventListener('click', () => retry(false));
  $('retry-all').addEventListener('click', () => retry(true));
  $('discard-selected').addEventListener('click', () => discard(false));
  $('discard-all').addEventListener('click', () => discard(true));
}

async function start() {
  wire();
  call('GET', '').then((health) => {
    $('engine').textContent = `${health.dir} · pid ${health.pid}`;
  }).catch(() => null);
  await refresh();
  schedule();
}

start();
