// The backgroundjobs dashboard: plain JavaScript, no build step, nothing loaded from elsewhere.
// Pages are rendered from the server's JSON API; one EventSource (/api/stream) brings changes.
'use strict';

const PHASES = ['Pending', 'Scheduled', 'Waiting', 'Queued', 'Running', 'Succeeded', 'Failed', 'Cancelled', 'Suspended'];

// The pages, in the order of the navigation (a page is a path pattern and a render function
// returning a clean-up).
const PAGES = [
  { path: /^\/$/, nav: '/', title: 'Overview', render: renderOverview },
  { path: /^\/jobs$/, nav: '/jobs', title: 'Jobs', render: renderJobs },
  { path: /^\/jobs\/([^/]+)\/([^/]+)$/, title: 'Job', render: renderJob },
  { path: /^\/recurring$/, nav: '/recurring', title: 'Recurring jobs', render: renderRecurring },
  { path: /^\/queues$/, nav: '/queues', title: 'Queues', render: renderQueues },
  { path: /^\/queues\/([^/]+)\/([^/]+)$/, title: 'Queue', render: renderQueue },
  { path: /^\/batches$/, nav: '/batches', title: 'Batches', render: renderBatches },
];

const ACTION_TEXT = {
  trigger: (j) => j.type === 'Recurring'
    ? [`Trigger ${j.name}?`, 'One extra run starts now; the schedule is unchanged.']
    : [`Start ${j.name} now?`, 'The job starts now instead of at its due time.'],
  requeue: (j) => [`Requeue ${j.name}?`, `The job runs again: a new Job is created (run ${(j.runs || 0) + 1}).`],
  'requeue-failed': (j) => [`Requeue the failed items of ${j.name}?`,
    `Only the items that did not succeed run again, under their own indexes (run ${(j.runs || 0) + 1}).`],
  cancel: (j) => [`Cancel ${j.name}?`, j.type === 'Recurring'
    ? 'Its running Jobs are deleted; the schedule goes on.'
    : 'Its Job is deleted and the record kept (phase Cancelled).'],
  delete: (j) => [`Delete ${j.name}?`, 'The job is deleted with its Jobs and pods. This cannot be undone.'],
  suspend: (j) => [`Suspend ${j.name}?`, j.type === 'Recurring'
    ? 'No new runs start until it is resumed.' : 'It does not start until it is resumed.'],
  resume: (j) => [`Resume ${j.name}?`, 'It is scheduled again.'],
};
const ACTION_LABEL = { trigger: 'Trigger', requeue: 'Requeue', 'requeue-failed': 'Requeue failed', cancel: 'Cancel', delete: 'Delete', suspend: 'Suspend', resume: 'Resume' };

const state = {
  info: null,
  namespace: null,       // the namespace shown (null: all, when the dashboard has -A)
  stream: null,
  onChange: null,        // the current page's handler of a `change` message
  cleanup: null,
};

// ------------------------------------------------------------------ helpers

function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

function fmtNumber(n) { return Number(n || 0).toLocaleString('en-US'); }

function fmtSpan(seconds) {
  const s = Math.abs(Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? ` ${s % 60}s` : ''}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)}m` : ''}`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600) ? ` ${Math.floor((s % 86400) / 3600)}h` : ''}`;
}

function when(iso) {
  if (!iso) return '<span class="muted">—</span>';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return esc(iso);
  const delta = (t - Date.now()) / 1000;
  const text = Math.abs(delta) < 1 ? 'now' : delta > 0 ? `in ${fmtSpan(delta)}` : `${fmtSpan(delta)} ago`;
  return `<time datetime="${esc(iso)}" title="${esc(new Date(t).toISOString())}">${text}</time>`;
}

function duration(start, end) {
  if (!start) return '';
  const a = Date.parse(start);
  const b = end ? Date.parse(end) : Date.now();
  if (Number.isNaN(a) || Number.isNaN(b)) return '';
  return fmtSpan((b - a) / 1000);
}

function badge(phase) {
  const p = phase || 'Pending';
  return `<span class="badge" data-phase="${esc(p)}" style="background:var(--${esc(p)}, var(--Pending))">${esc(p)}</span>`;
}

// The operator's record of the run's finished attempts (status.attempts), kept after the
// pods are gone: one row each, its error in full (300 bytes at most) in the last column.
function attemptsTable(records) {
  if (!records.length) return '<div class="empty">no finished attempt recorded yet</div>';
  const outcome = (a) => (a.exitCode === 0 && !['Evicted', 'DeadlineExceeded', 'PodDeleted'].includes(a.reason) ? 'Succeeded' : 'Failed');
  return `<table class="list"><thead><tr><th class="num">#</th><th>run</th><th>Job</th><th>pod</th><th>node</th><th>started</th><th>took</th><th>outcome</th><th class="num">exit</th><th>reason</th><th>error</th></tr></thead><tbody>${records.map((a) => `<tr data-attempt="${esc(a.attempt)}"><td class="num">${esc(a.attempt)}</td><td class="num">${esc(a.run)}</td><td class="mono">${esc(a.job)}</td><td class="mono">${a.pod ? esc(a.pod) : '<span class="muted">&lt;gone&gt;</span>'}</td><td class="mono">${esc(a.node)}</td><td>${when(a.started)}</td><td>${duration(a.started, a.finished)}</td><td>${badge(outcome(a))}</td><td class="num">${a.exitCode ?? ''}</td><td>${esc(a.reason)}</td><td class="msg mono" data-error>${esc(a.message)}</td></tr>`).join('')}</tbody></table>`;
}

// A job's status.progress as a bar: percent when the total is known, else the count.
function progressBar(progress) {
  if (!progress) return '<span class="muted">—</span>';
  const pct = progress.percent;
  const label = progress.summary || `${progress.done}${progress.total ? ` / ${progress.total}` : ''}`;
  return `<div class="progress small" data-progress="${pct === null ? '' : esc(Math.round(pct))}" title="${esc(progress.message || '')}">
    <div class="bar" style="width:${pct === null ? 0 : pct}%"></div><div class="label">${esc(label)}</div></div>${progress.message ? `<div class="sub">${esc(progress.message)}</div>` : ''}`;
}

// Whether spec.suspendUntil is still ahead (once it passed, the operator runs the job as if
// it were not suspended, though spec.suspend stays true).
function pausedUntilAhead(j) {
  return Boolean(j.suspendUntil) && Date.parse(j.suspendUntil) > Date.now();
}

// "suspended" and, with spec.suspendUntil, until when.
function suspendedText(j) {
  return j.suspendUntil ? `suspended until ${when(j.suspendUntil)}` : 'suspended';
}

function jobHref(ns, name) { return `/jobs/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`; }

function jobLink(ns, name) { return `<a href="${jobHref(ns, name)}" data-link>${esc(name)}</a>`; }

function scopeQuery(extra = {}) {
  const q = new URLSearchParams();
  if (state.namespace) q.set('namespace', state.namespace);
  for (const [k, v] of Object.entries(extra)) if (v !== null && v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

async function api(path, options = {}) {
  const init = { credentials: 'same-origin', ...options, headers: { Accept: 'application/json', ...(options.headers || {}) } };
  if (init.method && init.method !== 'GET') init.headers['X-Requested-With'] = 'bgjobs-dashboard';
  let response;
  for (let attempt = 0; ; attempt += 1) {
    try {
      response = await fetch(path, init);
      break;
    } catch (e) {
      // A dropped connection (the browser aborts requests when the machine's network
      // changes): read again; an action is never sent twice.
      if (init.method && init.method !== 'GET') throw new ApiError(0, { message: `the dashboard did not answer: ${e.message}` });
      if (attempt >= 2) throw new ApiError(0, { message: `the dashboard did not answer: ${e.message}` });
      await new Promise((resolve) => setTimeout(resolve, 300 * (attempt + 1)));
    }
  }
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// Call `fn` at most once per `ms`, and once more after the last call.
function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  return (...args) => {
    const wait = last + ms - Date.now();
    if (wait <= 0) {
      last = Date.now();
      fn(...args);
    } else if (!timer) {
      timer = setTimeout(() => { timer = null; last = Date.now(); fn(...args); }, wait);
    }
  };
}

// A page of jobs only: `fn` on changes of jobs, not on those of queue objects alone.
function jobsChanged(fn) {
  return (msg) => { if (!(msg.queues && msg.changed && msg.changed.length === 0)) fn(msg); };
}

function toast(text, kind = 'info') {
  const box = document.createElement('div');
  box.className = `toast ${kind}`;
  if (kind === 'error') box.setAttribute('data-error', '');
  box.innerHTML = `<div>${esc(text)}</div><button aria-label="close">×</button>`;
  box.querySelector('button').onclick = () => box.remove();
  document.getElementById('toasts').appendChild(box);
  if (kind !== 'error') setTimeout(() => box.remove(), 5000);
}

function confirmDialog(title, text) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.returnValue = 'cancel';
    dialog.showModal();
  });
}

// Ask, then do an action; a 403 is shown as the RBAC refusal it is.
async function runAction(action, job, after) {
  const [title, text] = ACTION_TEXT[action](job);
  if (!(await confirmDialog(title, `${text} (namespace ${job.namespace})`))) return;
  try {
    await api(`/api/jobs/${encodeURIComponent(job.namespace)}/${encodeURIComponent(job.name)}/${action}`, { method: 'POST' });
    toast(`${ACTION_LABEL[action]}: ${job.name} — done`);
    if (after) after(action);
  } catch (e) {
    if (e.status === 403 && e.body.rbac) toast(`Refused by Kubernetes RBAC. ${e.message}`, 'error');
    else if (e.status === 403) toast(`Not allowed: ${e.message}`, 'error');
    else toast(`${ACTION_LABEL[action]} failed: ${e.message}`, 'error');
  }
}

function actionButtons(job, actions, after) {
  if (!actions || !actions.length || (state.info && state.info.readOnly)) return '';
  const id = `a${Math.random().toString(36).slice(2)}`;
  setTimeout(() => {
    const box = document.getElementById(id);
    if (!box) return;
    box.querySelectorAll('button[data-action]').forEach((b) => {
      b.onclick = (ev) => { ev.preventDefault(); ev.stopPropagation(); runAction(b.dataset.action, job, after); };
    });
  });
  return `<div class="actions" id="${id}">${actions.map((a) =>
    `<button data-action="${a}" class="${a === 'delete' || a === 'cancel' ? 'danger' : ''}">${ACTION_LABEL[a]}</button>`).join('')}</div>`;
}

// A stacked bar chart of [minute, succeeded, failed] points.
function chart(points, { height = 160, labelEvery = 10, width = 600 } = {}) {
  const pad = { l: 34, r: 6, t: 6, b: 18 };
  const max = Math.max(1, ...points.map((p) => p[1] + p[2]));
  const w = (width - pad.l - pad.r) / Math.max(1, points.length);
  const y = (v) => (height - pad.b) - (v / max) * (height - pad.b - pad.t);
  let bars = '';
  points.forEach((p, i) => {
    const x = pad.l + i * w;
    const bw = Math.max(0.5, w - (w > 3 ? 1 : 0));
    if (p[1]) bars += `<rect class="s" x="${x.toFixed(2)}" y="${y(p[1]).toFixed(2)}" width="${bw.toFixed(2)}" height="${(height - pad.b - y(p[1])).toFixed(2)}"><title>${new Date(p[0] * 1000).toISOString().slice(11, 16)} UTC: ${p[1]} succeeded</title></rect>`;
    if (p[2]) bars += `<rect class="f" x="${x.toFixed(2)}" y="${y(p[1] + p[2]).toFixed(2)}" width="${bw.toFixed(2)}" height="${(y(p[1]) - y(p[1] + p[2])).toFixed(2)}"><title>${new Date(p[0] * 1000).toISOString().slice(11, 16)} UTC: ${p[2]} failed</title></rect>`;
  });
  let labels = '';
  points.forEach((p, i) => {
    if (i % labelEvery === 0) {
      const d = new Date(p[0] * 1000);
      labels += `<text x="${(pad.l + i * w).toFixed(1)}" y="${height - 4}">${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}</text>`;
    }
  });
  return `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img">
    <line class="axis" x1="${pad.l}" x2="${width - pad.r}" y1="${height - pad.b}" y2="${height - pad.b}"/>
    <text x="0" y="${pad.t + 8}">${max}</text><text x="0" y="${height - pad.b}">0</text>
    ${bars}${labels}</svg>`;
}

function legend(points) {
  const s = points.reduce((a, p) => a + p[1], 0);
  const f = points.reduce((a, p) => a + p[2], 0);
  return `<div class="legend"><span><span class="sw" style="background:var(--Succeeded)"></span>succeeded <b data-total="succeeded">${fmtNumber(s)}</b></span>
    <span><span class="sw" style="background:var(--Failed)"></span>failed <b data-total="failed">${fmtNumber(f)}</b></span></div>`;
}

// ------------------------------------------------------------------ overview

function renderOverview(main) {
  let live = [];
  main.innerHTML = `<h1>Overview</h1><p class="muted" id="scope-note"></p>
    <div id="watch-banner"></div>
    <div class="cards" id="cards"></div>
    <div class="grid2">
      <div class="panel"><h2>Runs finished per minute — last hour <span class="muted">(live)</span></h2><div id="live-chart"></div></div>
      <div class="panel"><h2>Last 24 hours <span class="muted" id="day-source"></span></h2><div id="day-chart"></div></div>
    </div>
    <div class="grid2">
      <div class="panel"><h2>Queues</h2><div id="queues"></div></div>
      <div class="panel"><h2>Types</h2><div id="types"></div></div>
    </div>`;

  const showCounts = (counts) => {
    const cards = [`<a class="card total" href="/jobs${scopeQuery()}" data-link data-phase-count="total"><span class="n">${fmtNumber(counts.total)}</span><span class="l">all jobs</span></a>`];
    for (const p of PHASES) {
      cards.push(`<a class="card" style="border-left-color:var(--${p})" href="/jobs${scopeQuery({ phase: p })}" data-link data-phase-count="${p}"><span class="n">${fmtNumber(counts.phases[p])}</span><span class="l">${p}</span></a>`);
    }
    document.getElementById('cards').innerHTML = cards.join('');
    const queues = Object.entries(counts.queues);
    const cols = PHASES.filter((p) => queues.some(([, c]) => c[p]));
    document.getElementById('queues').innerHTML = queues.length ? `<table class="list"><thead><tr><th>queue</th>${cols.map((p) => `<th class="num">${p}</th>`).join('')}<th class="num">total</th></tr></thead><tbody>
      ${queues.map(([q, c]) => `<tr data-queue="${esc(q)}"><td><a href="/jobs${scopeQuery({ queue: q })}" data-link>${esc(q)}</a></td>${cols.map((p) => `<td class="num">${c[p] ? `<a href="/jobs${scopeQuery({ queue: q, phase: p })}" data-link>${fmtNumber(c[p])}</a>` : ''}</td>`).join('')}<td class="num">${fmtNumber(Object.values(c).reduce((a, b) => a + b, 0))}</td></tr>`).join('')}
      </tbody></table>` : '<div class="empty">no jobs</div>';
    const types = Object.entries(counts.types);
    document.getElementById('types').innerHTML = types.length ? `<table class="list"><tbody>${types.map(([t, n]) => `<tr><td><a href="/jobs${scopeQuery({ type: t })}" data-link>${esc(t)}</a></td><td class="num">${fmtNumber(n)}</td></tr>`).join('')}</tbody></table>` : '<div class="empty">no jobs</div>';
  };
  const showLive = (points) => {
    live = points;
    const box = document.getElementById('live-chart');
    box.innerHTML = chart(live, { labelEvery: 10, width: box.clientWidth || 600 }) + legend(live);
  };
  const showWatch = (watch) => {
    const banner = document.getElementById('watch-banner');
    if (!watch.synced) banner.innerHTML = `<div class="banner warn">Loading the jobs… ${watch.error ? esc(watch.error) : ''}</div>`;
    else if (watch.error) banner.innerHTML = `<div class="banner err">The watch of BackgroundJobs failed and is being retried: ${esc(watch.error)}</div>`;
    else banner.innerHTML = '';
  };
  const loadDay = async () => {
    try {
      const day = await api(`/api/series${scopeQuery()}`);
      const source = day.source === 'prometheus' ? 'from Prometheus (every namespace the operator serves)' : 'from the watch (jobs still kept, and runs seen finishing)';
      document.getElementById('day-source').textContent = `— ${source}${day.error ? `; Prometheus failed: ${day.error}` : ''}`;
      const box = document.getElementById('day-chart');
      box.innerHTML = chart(day.points, { labelEvery: 180, width: box.clientWidth || 600 }) + legend(day.points);
    } catch (e) {
      document.getElementById('day-chart').innerHTML = `<div class="banner err">${esc(e.message)}</div>`;
    }
  };
  const load = async () => {
    const data = await api(`/api/overview${scopeQuery()}`);
    document.getElementById('scope-note').textContent = state.namespace ? `namespace ${state.namespace}` : (state.info.namespace ? `namespace ${state.info.namespace}` : 'all namespaces');
    showCounts(data.counts);
    showLive(data.live);
    showWatch(data.watch);
  };
  load().catch((e) => { main.innerHTML = `<div class="banner err">${esc(e.message)}</div>`; });
  loadDay();
  const dayTimer = setInterval(loadDay, 60000);
  state.onChange = (msg) => {
    if (!document.getElementById('cards')) return;
    showCounts(msg.counts);
    showLive(msg.live);
    showWatch(msg.watch);
  };
  return () => clearInterval(dayTimer);
}

// ------------------------------------------------------------------ jobs by state

const COLUMNS = {
  base: [
    ['Job', (j) => `${jobLink(j.namespace, j.name)}${j.args ? `<div class="sub mono">${esc(j.args)}</div>` : ''}`],
    ['Handler', (j) => `<span class="mono">${esc(j.handler)}</span>`],
    ['Queue', (j) => esc(j.queue)],
  ],
  all: [
    ['Type', (j) => esc(j.type)],
    ['Phase', (j) => `${badge(j.phase)}${j.phase === 'Running' && j.progress ? `<div class="sub" data-progress-summary>${esc(j.progress.summary)}</div>` : ''}${pausedUntilAhead(j) ? `<div class="sub" data-suspend-until>until ${when(j.suspendUntil)}</div>` : ''}`],
    ['Created', (j) => when(j.created)],
    ['Message', (j) => `<span class="msg">${esc(j.message)}</span>`, 'msg'],
  ],
  Pending: [['Type', (j) => esc(j.type)], ['Created', (j) => when(j.created)], ['Message', (j) => esc(j.message), 'msg']],
  Scheduled: [['Type', (j) => esc(j.type)], ['Due', (j) => when(j.due)], ['Created', (j) => when(j.created)]],
  Waiting: [['Parent', (j) => j.parent ? `${jobLink(j.namespace, j.parent)} <span class="sub">on ${esc(j.parentWhen)}</span>` : ''], ['Reason', (j) => `${esc(j.reason)}<div class="sub">${esc(j.message)}</div>`, 'msg'], ['Created', (j) => when(j.created)]],
  Queued: [['Position', (j) => j.queuePosition ? `#${j.queuePosition}` : '', 'num'], ['Reason', (j) => `${esc(j.reason)}<div class="sub">${esc(j.message)}</div>`, 'msg'], ['Created', (j) => when(j.created)]],
  Running: [['Progress', (j) => progressBar(j.progress), 'progress-cell'], ['Started', (j) => when(j.started)], ['Running for', (j) => duration(j.started)], ['Failed attempts', (j) => String(j.failedAttempts || 0), 'num'], ['Run', (j) => String(j.runs || ''), 'num']],
  Succeeded: [['Finished', (j) => when(j.finished)], ['Took', (j) => duration(j.started, j.finished)], ['Result', (j) => `<span class="mono">${esc(j.result)}</span>`, 'msg']],
  Failed: [['Finished', (j) => when(j.finished)], ['Reason', (j) => esc(j.reason)], ['Error', (j) => esc(j.message), 'msg'], ['Attempts', (j) => String(j.failedAttempts || 0), 'num']],
  Cancelled: [['Finished', (j) => when(j.finished)], ['Message', (j) => esc(j.message), 'msg']],
  Suspended: [['Type', (j) => esc(j.type)], ['Resumes', (j) => j.suspendUntil ? when(j.suspendUntil) : '<span class="muted">when resumed</span>'], ['Message', (j) => esc(j.message), 'msg'], ['Created', (j) => when(j.created)]],
};

const DEFAULT_SORT = { Scheduled: 'due', Succeeded: '-finished', Failed: '-finished', Cancelled: '-finished', Queued: 'created' };

function renderJobs(main) {
  const params = new URLSearchParams(location.search);
  const filters = {
    phase: params.get('phase') || '',
    type: params.get('type') || '',
    handler: params.get('handler') || '',
    queue: params.get('queue') || '',
    labels: params.get('labels') || '',
    q: params.get('q') || '',
    offset: Number(params.get('offset') || 0),
    limit: Number(params.get('limit') || 50),
  };
  main.innerHTML = `<h1>Jobs</h1>
    <div class="tabs" id="tabs"></div>
    <form class="filters" id="filters" onsubmit="return false">
      <input type="search" name="q" placeholder="search name, handler, arguments, message…" value="${esc(filters.q)}" aria-label="search">
      <select name="handler" aria-label="handler"><option value="">any handler</option></select>
      <select name="queue" aria-label="queue"><option value="">any queue</option></select>
      <select name="type" aria-label="type"><option value="">any type</option>${['Immediate', 'Delayed', 'Recurring', 'Continuation'].map((t) => `<option ${t === filters.type ? 'selected' : ''}>${t}</option>`).join('')}</select>
      <input type="text" name="labels" placeholder="labels: app=shop,tier!=web" value="${esc(filters.labels)}" aria-label="label selector">
    </form>
    <div id="list-error"></div>
    <div id="table"></div>
    <div class="pager" id="pager"></div>`;
  const form = document.getElementById('filters');

  const syncUrl = () => {
    const q = new URLSearchParams();
    if (state.namespace) q.set('namespace', state.namespace);
    for (const [k, v] of Object.entries(filters)) {
      if (v && !(k === 'offset' && v === 0) && !(k === 'limit' && v === 50)) q.set(k, v);
    }
    history.replaceState(null, '', `/jobs${q.toString() ? `?${q}` : ''}`);
  };

  const fillSelect = (name, values) => {
    const select = form.elements[name];
    const current = filters[name];
    const all = new Set(values);
    if (current) all.add(current);
    select.innerHTML = `<option value="">any ${name}</option>${[...all].sort().map((v) => `<option ${v === current ? 'selected' : ''}>${esc(v)}</option>`).join('')}`;
  };

  let loading = false;
  let again = false;
  const load = async () => {
    if (loading) { again = true; return; }
    loading = true;
    try {
      const sort = DEFAULT_SORT[filters.phase] || '-created';
      const data = await api(`/api/jobs${scopeQuery({ ...filters, sort, offset: filters.offset || null })}`);
      document.getElementById('list-error').innerHTML = '';
      draw(data);
    } catch (e) {
      document.getElementById('list-error').innerHTML = `<div class="banner err">${esc(e.message)}</div>`;
    } finally {
      loading = false;
      if (again) { again = false; load(); }
    }
  };

  const draw = (data) => {
    const tab = (phase, label, n) => {
      const q = new URLSearchParams(location.search);
      if (phase) q.set('phase', phase); else q.delete('phase');
      q.delete('offset');
      return `<a href="/jobs?${q}" data-link data-tab="${phase || 'all'}" class="${filters.phase === phase ? 'active' : ''}">${label}<span class="count">${fmtNumber(n)}</span></a>`;
    };
    document.getElementById('tabs').innerHTML = tab('', 'All', data.all) + PHASES.map((p) => tab(p, p, data.phases[p])).join('');
    fillSelect('handler', data.handlers);
    fillSelect('queue', data.queues);
    const showNs = !state.info.namespace && !state.namespace;
    const cols = [...COLUMNS.base, ...(COLUMNS[filters.phase] || COLUMNS.all)];
    if (showNs) cols.splice(1, 0, ['Namespace', (j) => esc(j.namespace)]);
    const rows = data.items.map((j) => `<tr data-job="${esc(j.namespace)}/${esc(j.name)}" data-job-phase="${esc(j.phase)}">${cols.map(([, f, cls]) => `<td class="${cls || ''}">${f(j)}</td>`).join('')}</tr>`).join('');
    document.getElementById('table').innerHTML = data.items.length
      ? `<table class="list"><thead><tr>${cols.map(([h, , cls]) => `<th class="${cls || ''}">${h}</th>`).join('')}</tr></thead><tbody>${rows}</tbody></table>`
      : '<div class="panel empty">No job matches.</div>';
    const last = Math.min(data.offset + data.limit, data.total);
    document.getElementById('pager').innerHTML = `<button data-page="prev" ${data.offset <= 0 ? 'disabled' : ''}>‹ Newer</button>
      <span data-range>${data.total ? `${fmtNumber(data.offset + 1)}–${fmtNumber(last)}` : '0'} of ${fmtNumber(data.total)}</span>
      <button data-page="next" ${last >= data.total ? 'disabled' : ''}>Older ›</button>
      <select aria-label="page size">${[25, 50, 100, 200].map((n) => `<option ${n === filters.limit ? 'selected' : ''}>${n}</option>`).join('')}</select>`;
    const pager = document.getElementById('pager');
    pager.querySelector('[data-page=prev]').onclick = () => { filters.offset = Math.max(0, filters.offset - filters.limit); syncUrl(); load(); };
    pager.querySelector('[data-page=next]').onclick = () => { filters.offset += filters.limit; syncUrl(); load(); };
    pager.querySelector('select').onchange = (e) => { filters.limit = Number(e.target.value); filters.offset = 0; syncUrl(); load(); };
  };

  let typing = null;
  form.addEventListener('input', (e) => {
    const el = e.target;
    if (!el.name) return;
    filters[el.name] = el.value;
    filters.offset = 0;
    clearTimeout(typing);
    typing = setTimeout(() => { syncUrl(); load(); }, el.tagName === 'SELECT' ? 0 : 250);
  });
  syncUrl();
  load();
  state.onChange = jobsChanged(throttle(() => load(), 500));
  return () => clearTimeout(typing);
}

// ------------------------------------------------------------------ one job

function secretReferences(spec) {
  const found = [];
  const walk = (value, path) => {
    if (Array.isArray(value)) { value.forEach((v, i) => walk(v, `${path}[${i}]`)); return; }
    if (!value || typeof value !== 'object') return;
    for (const [k, v] of Object.entries(value)) {
      if (k === 'secretKeyRef' && v) found.push(`Secret ${v.name} key ${v.key} (${path})`);
      else if (k === 'secretRef' && v) found.push(`Secret ${v.name}, every key (${path})`);
      else if (k === 'secret' && v && v.secretName) found.push(`Secret ${v.secretName} as a volume (${path})`);
      else walk(v, path ? `${path}.${k}` : k);
    }
  };
  walk(spec.podTemplate || {}, 'podTemplate');
  return found;
}

function json(value) { return `<pre class="json">${esc(JSON.stringify(value, null, 2))}</pre>`; }

function renderJob(main, [ns, name]) {
  ns = decodeURIComponent(ns);
  name = decodeURIComponent(name);
  const key = `${ns}/${name}`;
  let logSource = null;
  let logRun = null;
  let currentJobName = null;
  let closed = false;
  let related = new Set([key]);  // the job, its parents and children: their changes redraw the page

  main.innerHTML = `<div id="job"><p class="muted">loading ${esc(key)}…</p></div>`;

  const startLogs = (run) => {
    if (logSource) logSource.close();
    logRun = run;
    const box = document.getElementById('logs');
    const status = document.getElementById('log-status');
    const bar = document.getElementById('progress');
    if (!box) return;
    box.innerHTML = '';
    let lastPod = null;
    bar.hidden = true;
    status.textContent = 'following…';
    const q = run ? `?run=${run}` : '';
    logSource = new EventSource(`/api/jobs/${encodeURIComponent(ns)}/${encodeURIComponent(name)}/logs${q}`);
    logSource.addEventListener('line', (ev) => {
      const line = JSON.parse(ev.data);
      if (line.progress) {
        bar.hidden = false;
        const pct = line.progress.percent ?? 0;
        bar.querySelector('.bar').style.width = `${pct}%`;
        bar.querySelector('.label').textContent = `${line.progress.done} / ${line.progress.total}${line.progress.percent !== null ? ` (${pct.toFixed(0)}%)` : ''} ${line.message || ''}`;
        bar.dataset.percent = String(pct);
      }
      const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
      if (line.pod !== lastPod) {
        // A retried run has a pod per attempt: each pod's log under its name.
        lastPod = line.pod;
        const sep = document.createElement('div');
        sep.className = 'pod-sep';
        sep.textContent = `── pod ${line.pod}`;
        box.appendChild(sep);
      }
      const el = document.createElement('div');
      el.className = `log-line lvl-${line.level || 'info'}`;
      el.dataset.pod = line.pod;
      el.innerHTML = line.message !== undefined
        ? `${line.time ? `<span class="t">${esc(String(line.time).slice(11, 19))}</span> ` : ''}${esc((line.level || '').toUpperCase().padEnd(7))} ${esc(line.message)}${line.exception ? `\n${esc(line.exception)}` : ''}`
        : esc(line.text);
      box.appendChild(el);
      if (atEnd) box.scrollTop = box.scrollHeight;
    });
    logSource.addEventListener('end', () => { status.textContent = 'the run has ended'; logSource.close(); });
    logSource.addEventListener('failure', (ev) => { status.textContent = JSON.parse(ev.data).message; logSource.close(); });
    logSource.onerror = () => { if (logSource.readyState === EventSource.CLOSED) status.textContent = 'disconnected'; };
  };

  const draw = (d) => {
    const j = d.row;
    const job = d.job;
    const spec = job.spec || {};
    const status = job.status || {};
    const chain = [...d.parents].reverse().map((p) => p.missing
      ? `<span class="node">${esc(p.name)} <span class="muted">(absent)</span></span><span class="arrow">→ <span class="sub">${esc(p.when || '')}</span></span>`
      : `<span class="node">${jobLink(ns, p.name)} ${badge(p.phase)}</span><span class="arrow">→ <span class="sub">${esc(p.when || '')}</span></span>`).join('')
      + `<span class="node current" data-chain-current>${esc(name)} ${badge(j.phase)}</span>`
      + (d.children.length ? `<span class="arrow">→</span>${d.children.map((c) => `<span class="node" data-child="${esc(c.name)}">${jobLink(ns, c.name)} ${badge(c.phase)} <span class="sub">on ${esc(c.parentWhen)}</span></span>`).join('')}` : '');
    const secrets = secretReferences(spec);
    const facts = [
      ['Type', esc(j.type)], ['Handler', `<span class="mono">${esc(j.handler)}</span>`],
      ['Queue', `<a href="${queueHref(ns, j.queue)}" data-link>${esc(j.queue)}</a>${j.queuePosition ? ` <span data-queue-position>#${j.queuePosition} in line</span>` : ''}`],
      ['Created', when(j.created)],
      d.schedule ? ['Schedule', `${esc(d.schedule.words)} <span class="mono">(${esc(d.schedule.cron)})</span>, ${esc(d.schedule.timeZone)}`] : null,
      j.due ? [j.type === 'Recurring' ? 'Next run' : 'Due', when(j.due)] : null,
      j.lastRun ? ['Last run', `${when(j.lastRun)} ${j.outcome ? badge(j.outcome) : ''}`] : null,
      j.started ? ['Started', when(j.started)] : null,
      j.finished ? ['Finished', `${when(j.finished)} (took ${duration(j.started, j.finished)})`] : null,
      j.suspend ? ['Suspended', `<span data-suspended>${!j.suspendUntil ? 'until resumed' : pausedUntilAhead(j)
        ? `until ${when(j.suspendUntil)} <span class="mono">(${esc(j.suspendUntil)})</span>`
        : `resumed at ${when(j.suspendUntil)} <span class="mono">(${esc(j.suspendUntil)}, spec.suspendUntil)</span>`}</span>`] : null,
      j.progress ? ['Progress', `<div data-status-progress>${progressBar(j.progress)}${j.progress.updatedAt ? `<div class="sub">read ${when(j.progress.updatedAt)}</div>` : ''}</div>`] : null,
      j.batch ? ['Items', `<span data-batch-items>${batchCounts(j.batch)}</span>${status.batch && status.batch.failedIndexes ? `<div class="sub">failed indexes <span class="mono">${esc(status.batch.failedIndexes)}</span></div>` : ''}${status.batch && status.batch.lastError ? `<div class="sub">last error: ${esc(status.batch.lastError)}</div>` : ''}`] : null,
      ['Runs', String(j.runs)], ['Failed attempts', String(j.failedAttempts)],
      status.jobName ? ['Current Job', `<span class="mono">${esc(status.jobName)}</span>`] : null,
      spec.retries !== undefined ? ['Retries', String(spec.retries)] : null,
      spec.timeout ? ['Timeout', esc(spec.timeout)] : null,
      ['Message', esc(status.message || '')],
    ].filter(Boolean);
    document.getElementById('job').innerHTML = `
      <div class="jobhead">
        <div><h1><span data-job-name>${esc(name)}</span> ${badge(j.phase)}</h1><div class="muted">namespace ${esc(ns)} · ${esc(j.type)}${j.reason ? ` · ${esc(j.reason)}` : ''}</div></div>
        ${d.readOnly ? '' : actionButtons(j, d.actions, () => refresh())}
      </div>
      <div class="panel"><h2>Chain</h2><div class="chain">${chain}</div></div>
      <div class="grid2">
        <div class="panel"><h2>Summary</h2><dl class="facts">${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl></div>
        <div class="panel"><h2>Arguments</h2>
          <h3 class="muted">args</h3>${json(spec.args || [])}
          <h3 class="muted" style="margin-top:8px">kwargs</h3>${json(spec.kwargs || {})}
          ${secrets.length ? `<h3 class="muted" style="margin-top:8px">Secret references (never read by the dashboard)</h3><ul>${secrets.map((s) => `<li class="mono">${esc(s)}</li>`).join('')}</ul>` : ''}
          <h3 class="muted" style="margin-top:8px">Result</h3><div data-result>${status.result !== undefined ? json(status.result) : `<span class="muted">${['Succeeded', 'Failed', 'Cancelled'].includes(j.phase) ? 'none' : 'none yet'}</span>`}</div>
        </div>
      </div>
      <div class="panel"><h2>Logs <span class="muted" id="log-status"></span></h2>
        <div class="filters"><label>run <select id="log-run"><option value="">current</option>${d.runs.filter((r) => r.run).map((r) => `<option value="${esc(r.run)}">${esc(r.run)} — ${esc(r.job)}</option>`).join('')}</select></label></div>
        <div class="progress" id="progress" hidden><div class="bar" style="width:0"></div><div class="label"></div></div>
        <pre class="logs" id="logs"></pre>
      </div>
      <div class="panel"><h2>Attempts ${d.attempts.total ? `<span class="muted" data-attempts-total>${esc(d.attempts.total)} in run ${esc(d.attempts.run ?? '?')}${d.attempts.total > d.attempts.records.length ? ` (the last ${d.attempts.records.length} shown)` : ''}</span>` : ''}</h2><div id="attempts">${attemptsTable(d.attempts.records)}</div></div>
      <div class="panel"><h2>Runs and their pods</h2><div id="runs">${d.runs.length ? d.runs.map((r) => `
        <div class="run" data-run="${esc(r.run || '')}"><div class="runhead"><b>run ${esc(r.run || '?')}</b><span class="mono">${esc(r.job)}</span>${badge(r.outcome)}<span class="muted">created ${when(r.created)}${r.finished ? `, finished ${when(r.finished)} (took ${duration(r.started || r.created, r.finished)})` : ''}</span></div>
        ${r.attempts.length ? `<table class="list"><thead><tr><th>#</th><th>pod</th><th>phase</th><th>started</th><th>finished</th><th class="num">exit</th><th>reason</th><th>message</th></tr></thead><tbody>${r.attempts.map((a, i) => `<tr data-pod="${esc(a.pod)}"><td>${i + 1}</td><td class="mono">${esc(a.pod)}</td><td>${badge(a.phase)}</td><td>${when(a.started)}</td><td>${when(a.finished)}</td><td class="num">${a.exitCode ?? ''}</td><td>${esc(a.reason)}</td><td class="msg mono">${esc(a.message)}</td></tr>`).join('')}</tbody></table>` : '<div class="empty">no pod yet</div>'}</div>`).join('') : '<div class="empty">no run yet</div>'}</div></div>
      <div class="panel"><h2>Timeline</h2><ol class="timeline">${d.timeline.map((e) => `<li class="${e.source} ${esc(e.type)}"><div class="when">${when(e.time)} · ${esc(e.kind)} ${esc(e.object)}</div><b>${esc(e.title)}</b>${e.reason && e.reason !== e.title ? ` <span class="muted">${esc(e.reason)}</span>` : ''} ${esc(e.message)}${e.count > 1 ? ` <span class="muted">×${e.count}</span>` : ''}</li>`).join('') || '<li>nothing yet</li>'}</ol></div>
      <div class="panel"><details><summary><b>Spec</b> and metadata</summary>${json({ metadata: job.metadata, spec })}</details></div>`;
    document.getElementById('log-run').value = logRun || '';
    document.getElementById('log-run').onchange = (e) => startLogs(e.target.value || null);
  };

  const refresh = async () => {
    try {
      const d = await api(`/api/jobs/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`);
      if (closed) return;
      const box = document.getElementById('logs');
      const keep = box ? [...box.childNodes] : [];
      const keepStatus = document.getElementById('log-status')?.textContent;
      const bar = document.getElementById('progress');
      const keepBar = bar ? { hidden: bar.hidden, html: bar.innerHTML, percent: bar.dataset.percent } : null;
      draw(d);
      related = new Set([key, ...d.parents.map((p) => `${ns}/${p.name}`), ...d.children.map((c) => `${ns}/${c.name}`)]);
      const jobName = (d.job.status || {}).jobName || null;
      if (jobName !== currentJobName && !logRun) {
        currentJobName = jobName;
        if (jobName) startLogs(null); else document.getElementById('log-status').textContent = 'no run yet';
      } else {
        // The page was redrawn: put the lines followed so far back.
        document.getElementById('logs').append(...keep);
        document.getElementById('log-status').textContent = keepStatus || '';
        if (keepBar) {
          const nb = document.getElementById('progress');
          nb.hidden = keepBar.hidden; nb.innerHTML = keepBar.html;
          if (keepBar.percent) nb.dataset.percent = keepBar.percent;
        }
      }
    } catch (e) {
      if (closed) return;
      if (e.status === 404) {
        document.getElementById('job').innerHTML = `<div class="banner warn" data-gone>${esc(key)} does not exist (any more). <a href="/jobs${scopeQuery()}" data-link>All jobs</a></div>`;
        if (logSource) logSource.close();
      } else {
        toast(`Could not load ${key}: ${e.message}`, 'error');
      }
    }
  };
  refresh();
  state.onChange = throttle((msg) => {
    if (msg.changed === null || msg.changed.some((k) => related.has(k))) refresh();
  }, 1000);
  return () => { closed = true; if (logSource) logSource.close(); };
}

// ------------------------------------------------------------------ recurring jobs

function renderRecurring(main) {
  main.innerHTML = '<h1>Recurring jobs</h1><div id="recurring"></div>';
  const load = async () => {
    const data = await api(`/api/recurring${scopeQuery()}`);
    const box = document.getElementById('recurring');
    if (!box) return;
    const showNs = !state.info.namespace && !state.namespace;
    box.innerHTML = data.items.length ? `<table class="list"><thead><tr><th>Job</th>${showNs ? '<th>Namespace</th>' : ''}<th>Handler</th><th>Schedule</th><th>Time zone</th><th>Next run</th><th>Last run</th><th>State</th><th></th></tr></thead><tbody>
      ${data.items.map((j, i) => `<tr data-job="${esc(j.namespace)}/${esc(j.name)}">
        <td>${jobLink(j.namespace, j.name)}</td>${showNs ? `<td>${esc(j.namespace)}</td>` : ''}
        <td class="mono">${esc(j.handler)}</td>
        <td>${esc(j.words)}<div class="sub mono">${esc(j.schedule)}</div></td>
        <td>${esc(j.timeZone)}</td>
        <td>${j.suspend && (!j.suspendUntil || pausedUntilAhead(j)) ? `<span class="muted">${suspendedText(j)}</span>` : when(j.due)}</td>
        <td>${j.lastRun ? `${when(j.lastRun)} ${j.outcome ? badge(j.outcome) : '<span class="muted">running</span>'}` : '<span class="muted">never</span>'}<div class="sub">${esc(j.runs)} runs</div></td>
        <td>${badge(j.phase)}</td>
        <td data-row-actions="${i}"></td></tr>`).join('')}</tbody></table>` : '<div class="panel empty">No recurring job.</div>';
    data.items.forEach((j, i) => {
      const cell = box.querySelector(`[data-row-actions="${i}"]`);
      if (cell) cell.innerHTML = actionButtons(j, j.actions.filter((a) => ['trigger', 'suspend', 'resume'].includes(a)), () => load());
    });
  };
  load().catch((e) => { main.innerHTML = `<div class="banner err">${esc(e.message)}</div>`; });
  state.onChange = jobsChanged(throttle(() => load().catch(() => {}), 1000));
  return null;
}

// ------------------------------------------------------------------ queues

const PAUSED_BADGE = '<span class="badge" data-paused style="background:var(--Suspended)">Paused</span>';

function queueHref(ns, name) { return `/queues/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`; }

function queueWatchBanner(watch) {
  if (watch.missing) return '<div class="banner warn" data-queues-missing>The BackgroundJobQueue resource is not installed in this cluster: every queue runs on the operator\'s defaults. Shown are the queue names the jobs use.</div>';
  if (watch.error) return `<div class="banner err">The watch of BackgroundJobQueues failed and is being retried: ${esc(watch.error)}</div>`;
  if (!watch.synced) return '<div class="banner warn">Loading the queues…</div>';
  return '';
}

function queueLimits(q) {
  if (!q.object) return '<span class="muted">operator defaults (no BackgroundJobQueue)</span>';
  const parts = [q.maxConcurrency ? `max ${fmtNumber(q.maxConcurrency)} at once` : 'no limit of its own'];
  if (q.rateLimit) parts.push(`${q.rateLimit.perSecond}/s, burst ${q.rateLimit.burst ?? 1}`);
  if (q.priorityClassName) parts.push(`PriorityClass <span class="mono">${esc(q.priorityClassName)}</span>`);
  return parts.join(' · ');
}

function renderQueues(main) {
  main.innerHTML = '<h1>Queues</h1><div id="queues-banner"></div><div id="queues-list"></div>';
  const load = async () => {
    const data = await api(`/api/queues${scopeQuery()}`);
    const box = document.getElementById('queues-list');
    if (!box) return;
    document.getElementById('queues-banner').innerHTML = queueWatchBanner(data.watch);
    const showNs = !state.info.namespace && !state.namespace;
    const jobsOf = (q, phase) => `/jobs${scopeQuery({ namespace: q.namespace, queue: q.name, phase })}`;
    box.innerHTML = data.items.length ? `<table class="list"><thead><tr><th>Queue</th>${showNs ? '<th>Namespace</th>' : ''}<th>State</th><th>Limits</th><th class="num">Priority</th><th class="num">Pending</th><th class="num">Running</th><th>Oldest pending</th><th class="num">Queued jobs</th><th class="num">All jobs</th></tr></thead><tbody>
      ${data.items.map((q) => `<tr data-queue-row="${esc(q.namespace)}/${esc(q.name)}">
        <td><a href="${queueHref(q.namespace, q.name)}" data-link>${esc(q.name)}</a></td>${showNs ? `<td>${esc(q.namespace)}</td>` : ''}
        <td>${q.paused ? PAUSED_BADGE : (q.object ? '<span class="muted">active</span>' : '')}</td>
        <td>${queueLimits(q)}</td>
        <td class="num">${q.object ? esc(q.priority) : ''}</td>
        <td class="num" data-pending>${q.object ? fmtNumber(q.pending) : ''}</td>
        <td class="num" data-running>${q.object ? fmtNumber(q.running) : ''}</td>
        <td>${q.object ? when(q.oldestPendingSince) : ''}</td>
        <td class="num" data-queued>${q.queued ? `<a href="${jobsOf(q, 'Queued')}" data-link>${fmtNumber(q.queued)}</a>` : '0'}</td>
        <td class="num">${fmtNumber(Object.values(q.jobs).reduce((a, b) => a + b, 0))}</td></tr>`).join('')}</tbody></table>`
      : '<div class="panel empty">No queue: no BackgroundJobQueue and no job.</div>';
  };
  load().catch((e) => { main.innerHTML = `<div class="banner err">${esc(e.message)}</div>`; });
  state.onChange = throttle(() => load().catch(() => {}), 1000);
  return null;
}

function renderQueue(main, [ns, name]) {
  ns = decodeURIComponent(ns);
  name = decodeURIComponent(name);
  main.innerHTML = `<div id="queue"><p class="muted">loading queue ${esc(ns)}/${esc(name)}…</p></div>`;
  const load = async () => {
    const d = await api(`/api/queues/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`);
    const box = document.getElementById('queue');
    if (!box) return;
    const q = d.queue;
    const facts = [
      ['Namespace', esc(q.namespace)],
      ['State', q.paused ? '<span data-paused>paused: running jobs finish, nothing new starts</span>' : (q.object ? 'active' : '—')],
      ['Limits', queueLimits(q)],
      q.object ? ['Priority', esc(q.priority)] : null,
      q.object ? ['Pending (operator)', `<span data-pending>${fmtNumber(q.pending)}</span>`] : null,
      q.object ? ['Running (operator)', `<span data-running>${fmtNumber(q.running)}</span>`] : null,
      q.object ? ['Oldest pending since', when(q.oldestPendingSince)] : null,
      ['Jobs by phase', PHASES.filter((p) => q.jobs[p]).map((p) => `<a href="/jobs${scopeQuery({ namespace: q.namespace, queue: q.name, phase: p })}" data-link>${badge(p)} ${fmtNumber(q.jobs[p])}</a>`).join(' ') || '<span class="muted">none</span>'],
    ].filter(Boolean);
    const more = d.waitingTotal > d.waiting.length
      ? `<p class="muted">The first ${fmtNumber(d.waiting.length)} of ${fmtNumber(d.waitingTotal)}: <a href="/jobs${scopeQuery({ namespace: q.namespace, queue: q.name, phase: 'Queued' })}" data-link>all of them</a>.</p>` : '';
    box.innerHTML = `<h1>Queue <span data-queue-name>${esc(q.name)}</span> ${q.paused ? PAUSED_BADGE : ''}</h1>
      ${queueWatchBanner(d.watch)}
      <div class="panel"><dl class="facts">${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl></div>
      <div class="panel"><h2>Waiting, in the order the queue admits them <span class="muted">(${fmtNumber(d.waitingTotal)})</span></h2>
      ${d.waiting.length ? `<table class="list"><thead><tr><th class="num">Position</th><th>Job</th><th>Handler</th><th>Reason</th><th>Created</th></tr></thead><tbody>
        ${d.waiting.map((j) => `<tr data-waiting="${esc(j.name)}"><td class="num">#${j.queuePosition}</td><td>${jobLink(j.namespace, j.name)}</td><td class="mono">${esc(j.handler)}</td><td>${esc(j.reason)}<div class="sub">${esc(j.message)}</div></td><td>${when(j.created)}</td></tr>`).join('')}
      </tbody></table>${more}` : '<div class="empty">No job waits.</div>'}</div>`;
  };
  load().catch((e) => { main.innerHTML = `<div class="banner err">${esc(e.message)}</div>`; });
  state.onChange = throttle(() => load().catch(() => {}), 1000);
  return null;
}

// ------------------------------------------------------------------ batches

const ITEM_STATES = [['succeeded', 'Succeeded'], ['failed', 'Failed'], ['running', 'Running'], ['pending', 'Pending']];

function batchCounts(b) {
  return ITEM_STATES.map(([k, phase]) => `<span class="tag" data-items="${k}" style="border-left:3px solid var(--${phase})">${k} <b>${fmtNumber(b[k])}</b></span>`).join(' ')
    + ` <span class="muted">of ${fmtNumber(b.total)}</span>`;
}

// The items as one stacked bar: succeeded, failed, running, the rest pending.
function batchBar(b) {
  const total = Math.max(1, b.total);
  return `<div class="stack">${ITEM_STATES.map(([k, phase]) => b[k] ? `<span style="width:${(100 * b[k]) / total}%;background:var(--${phase})" title="${k} ${b[k]}"></span>` : '').join('')}</div>`;
}

function renderBatches(main) {
  main.innerHTML = '<h1>Batches</h1><div id="batches"></div>';
  const load = async () => {
    const data = await api(`/api/batches${scopeQuery()}`);
    const box = document.getElementById('batches');
    if (!box) return;
    const showNs = !state.info.namespace && !state.namespace;
    box.innerHTML = data.items.length ? `<table class="list"><thead><tr><th>Batch</th>${showNs ? '<th>Namespace</th>' : ''}<th>Handler</th><th>Queue</th><th>Phase</th><th>Items</th><th class="progress-cell">Progress</th><th>Created</th><th>Took</th></tr></thead><tbody>
      ${data.items.map((j) => `<tr data-batch="${esc(j.namespace)}/${esc(j.name)}">
        <td>${jobLink(j.namespace, j.name)}${j.continuations ? `<div class="sub">${j.continuations} continuation${j.continuations > 1 ? 's' : ''}</div>` : ''}</td>${showNs ? `<td>${esc(j.namespace)}</td>` : ''}
        <td class="mono">${esc(j.handler)}</td><td>${esc(j.queue)}</td>
        <td>${badge(j.phase)}</td>
        <td>${j.batch ? `${batchBar(j.batch)}${batchCounts(j.batch)}` : ''}</td>
        <td class="progress-cell">${progressBar(j.progress)}</td>
        <td>${when(j.created)}</td><td>${j.started ? duration(j.started, j.finished) : ''}</td></tr>`).join('')}</tbody></table>`
      : '<div class="panel empty">No batch (a BackgroundJob with spec.items).</div>';
  };
  load().catch((e) => { main.innerHTML = `<div class="banner err">${esc(e.message)}</div>`; });
  state.onChange = jobsChanged(throttle(() => load().catch(() => {}), 1000));
  return null;
}

// ------------------------------------------------------------------ frame: navigation, scope, stream

function connectStream() {
  if (state.stream) state.stream.close();
  const live = document.getElementById('live');
  const source = new EventSource(`/api/stream${scopeQuery()}`);
  state.stream = source;
  source.addEventListener('hello', () => { live.className = 'live on'; live.textContent = 'live'; });
  source.addEventListener('ping', () => { live.className = 'live on'; live.textContent = 'live'; });
  source.addEventListener('change', (ev) => {
    live.className = 'live on';
    live.textContent = 'live';
    const msg = JSON.parse(ev.data);
    if (state.onChange) state.onChange(msg);
  });
  source.onerror = () => { live.className = 'live off'; live.textContent = 'reconnecting…'; };
}

function drawNav() {
  document.getElementById('nav').innerHTML = PAGES.filter((p) => p.nav).map((p) =>
    `<a href="${p.nav}${scopeQuery()}" data-link class="${p.path.test(location.pathname) ? 'active' : ''}">${p.title}</a>`).join('');
}

function drawScope() {
  const select = document.getElementById('namespace-select');
  const fixed = document.getElementById('namespace-fixed');
  if (state.info.namespace) {
    fixed.textContent = state.info.namespace;
    select.hidden = true;
    return;
  }
  const names = new Set(state.info.namespaces);
  if (state.namespace) names.add(state.namespace);
  select.innerHTML = `<option value="">all namespaces</option>${[...names].sort().map((n) => `<option ${n === state.namespace ? 'selected' : ''}>${esc(n)}</option>`).join('')}`;
  select.hidden = false;
  select.onchange = () => {
    state.namespace = select.value || null;
    const q = new URLSearchParams(location.search);
    if (state.namespace) q.set('namespace', state.namespace); else q.delete('namespace');
    q.delete('offset');
    history.replaceState(null, '', `${location.pathname}${q.toString() ? `?${q}` : ''}`);
    connectStream();
    route();
  };
}

function route() {
  if (state.cleanup) state.cleanup();
  state.cleanup = null;
  state.onChange = null;
  const main = document.getElementById('main');
  for (const page of PAGES) {
    const match = page.path.exec(location.pathname);
    if (match) {
      document.title = `${page.title} · backgroundjobs`;
      state.cleanup = page.render(main, match.slice(1)) || null;
      drawNav();
      return;
    }
  }
  main.innerHTML = '<div class="panel empty">No such page. <a href="/" data-link>Overview</a></div>';
  drawNav();
}

document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[data-link]');
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  const url = new URL(a.href, location.href);
  if (!url.searchParams.has('namespace') && state.namespace) url.searchParams.set('namespace', state.namespace);
  const asked = url.searchParams.get('namespace');
  if (asked && !state.info.namespace && asked !== state.namespace) {
    // A link into one namespace (a queue's jobs): the page's scope follows it.
    state.namespace = asked;
    drawScope();
    connectStream();
  }
  history.pushState(null, '', url.pathname + url.search);
  route();
});
window.addEventListener('popstate', route);

async function start() {
  try {
    state.info = await api('/api/info');
  } catch (e) {
    document.getElementById('main').innerHTML = `<div class="banner err">${esc(e.message)}</div>`;
    document.getElementById('live').textContent = 'not connected';
    return;
  }
  state.namespace = state.info.namespace ? null : (new URLSearchParams(location.search).get('namespace') || null);
  drawScope();
  connectStream();
  route();
}

start();
