// The amb inspector: the program list, and a program's view at any step (the
// ambient tree, the canonical term, the redex, the diff, the event DAG, the value
// or why it is stuck), read from the node's API (spec/network.md §7). Plain ES
// module, no dependencies. The view keeps at most MAX_TREE_NODES tree nodes in
// the DOM: the server answers at most TREE_PAGE nodes, collapsed subtrees are
// fetched on demand. On a node whose API needs the bearer token, the page reads
// it from the URL fragment (`#token=…`, which the browser never sends) or asks
// for it, keeps it for the tab (sessionStorage) and sends it with each request.

const TREE_PAGE = 1500;
const MAX_TREE_NODES = 5000;
const EVENTS_PAGE = 300;
const app = document.getElementById('app');
const where = document.getElementById('where');

/** State the tests and the benches read. */
const inspector = (window.inspector = { step: null, renderMs: null, treeNodes: 0, live: 'off' });

// ----- the bearer token -----

const TOKEN_KEY = 'amb-api-token';
{
  const match = location.hash.match(/(?:^#|&)token=([^&]*)/);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
}

function headers(accept) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Accept: accept, Authorization: `Bearer ${token}` } : { Accept: accept };
}

async function api(path) {
  const response = await fetch(path, { headers: headers('application/json') });
  const body = await response.json().catch(() => ({ error: { message: response.statusText } }));
  if (!response.ok) {
    const error = new Error(body.error ? body.error.message : response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

// A server-sent event stream read with fetch (EventSource cannot send the token):
// calls `on.open()` once connected, `on[event](data)` per event, `on.error()` when
// it cannot connect or ends.
async function stream(path, on) {
  try {
    const response = await fetch(path, { headers: headers('text/event-stream') });
    if (!response.ok || !response.body) throw new Error(response.statusText);
    on.open();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length && on[event]) on[event](data.join('\n'));
      }
    }
  } catch (_) {
    // fall through: the stream is unavailable or over
  }
  on.error();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// Each peer its own colour: distinct ones in the order peers are met, then hues
// from a hash of the peer id.
const PALETTE = ['#2e8b57', '#b03a7a', '#3a6fb0', '#c77d1a', '#7a4fb0', '#1a9aa0', '#a0522d', '#5a7d1a'];
const colours = new Map();
function color(peer) {
  if (!peer) return '#999';
  if (!colours.has(peer)) {
    let hash = 0;
    for (const c of peer) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
    colours.set(peer, colours.size < PALETTE.length ? PALETTE[colours.size] : `hsl(${hash % 360} 55% 45%)`);
  }
  return colours.get(peer);
}

function short(text, n = 12) {
  return text && text.length > n ? text.slice(0, n) + '…' : text;
}

function cidOf(address) {
  return address.replace(/^\/amb\//, '');
}

function showError(error) {
  app.replaceChildren(el('p', { class: 'error', id: 'error', text: error.message }));
  if (error.status === 401) askToken();
}

// The API wants the bearer token: a field to give it (kept for this tab).
function askToken() {
  const input = el('input', { type: 'password', id: 'token', size: 64, autocomplete: 'off', placeholder: 'the api_token file of the node\'s home' });
  const form = el('form', { id: 'token-form' }, el('label', {}, 'bearer token: ', input), ' ', el('button', { type: 'submit', text: 'use' }));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    location.reload();
  });
  app.append(form);
}

// ----- the program list -----

async function listView() {
  where.textContent = 'programs';
  const table = el('table', { class: 'programs', id: 'programs' },
    el('thead', {}, el('tr', {}, ...['program', 'name', 'status', 'events', 'steps', 'hosts'].map((h) => el('th', { text: h })))));
  const body = el('tbody');
  table.append(body);
  const more = el('button', { id: 'more', text: 'more' });
  app.replaceChildren(table, more);
  let next = null;
  async function page() {
    const answer = await api(`/v1/programs?limit=100${next ? `&after=${encodeURIComponent(next)}` : ''}`);
    for (const p of answer.programs) {
      body.append(el('tr', { 'data-address': p.address },
        el('td', {}, el('a', { href: `/programs/${cidOf(p.address)}`, class: 'mono', text: short(cidOf(p.address), 24) })),
        el('td', { text: p.name || '' }),
        el('td', {}, el('span', { class: `status ${p.status}`, text: p.status })),
        el('td', { text: p.events }),
        el('td', { text: p.steps }),
        el('td', {}, ...p.hosts.map((h) => el('span', { class: 'chip mono', style: `border-color:${color(h)}`, title: h, text: short(h, 10) })))));
    }
    next = answer.next;
    more.hidden = !next;
    document.body.dataset.ready = 'list';
  }
  more.addEventListener('click', () => page().catch(showError));
  await page();
  // Live: programs stored from now on join the list (only a node has a stream).
  let timer = null;
  stream('/v1/events', {
    open: () => { inspector.live = 'on'; where.textContent = 'programs (live)'; },
    error: () => { inspector.live = 'unavailable'; },
    stored: (data) => {
      inspector.received = (inspector.received || 0) + 1;
      const stored = JSON.parse(data);
      if (body.querySelector(`tr[data-address="/amb/${stored.program}"]`)) return;
      clearTimeout(timer);
      timer = setTimeout(() => { body.replaceChildren(); next = null; page().catch(showError); }, 250);
    },
  });
}

// ----- a host's part of a program -----

// A delegate holds its order's events, not the program: no step to replay. Its
// view lists the slices it holds (each log with its ambient's name, its address
// and its events) and the events themselves, as stored (spec/network.md §7).
async function partView(cid, first) {
  where.replaceChildren(el('a', { href: '/', text: 'programs' }), ' / ', el('span', { class: 'mono', text: short(cid, 24) }), ' (a host\'s part)');
  let answer = first;
  const events = [...answer.events];
  while (answer.next !== null && answer.next !== undefined && events.length < 10000) {
    answer = await api(`/v1/programs/${cid}/events?limit=${EVENTS_PAGE}&after=${answer.next}`);
    events.push(...answer.events);
  }
  const logs = new Map();
  for (const e of events) {
    const log = logs.get(e.log) || { name: e.log_name, events: 0, writers: new Set() };
    log.events += 1;
    log.writers.add(e.peer);
    logs.set(e.log, log);
  }
  const table = el('table', { class: 'programs', id: 'slices' },
    el('thead', {}, el('tr', {}, ...['slice', 'address', 'events', 'writers'].map((h) => el('th', { text: h })))));
  const body = el('tbody');
  for (const [log, info] of logs) {
    body.append(el('tr', { 'data-slice': info.name },
      el('td', { text: info.name }),
      // The root log's id is no address: only its path events are held here.
      el('td', { class: 'mono', text: info.name === '<root>' ? '(the root log: its path events only)' : `/amb/${log}` }),
      el('td', { text: info.events }),
      el('td', {}, ...[...info.writers].map((h) => el('span', { class: 'chip mono', style: `border-color:${color(h)}`, title: h, text: short(h, 10) })))));
  }
  table.append(body);
  const list = el('pre', { class: 'mono', id: 'part-events' });
  list.textContent = events.map((e) => `${e.log_name}#${e.seq} ${e.op} ${e.target || ''} ${short(e.peer, 14)} ${short(e.cid, 20)}`).join('\n');
  app.replaceChildren(
    el('p', { class: 'muted', text: `A host's part of a program: the events of its order, ${events.length} of them, checked against the order when walked; not replayed (this node does not hold the program). A slice's value: amb value /amb/<slice>.` }),
    el('section', { class: 'panel' }, el('h2', { text: 'slices held' }), table),
    el('section', { class: 'panel' }, el('h2', { text: 'events' }), list));
  document.body.dataset.ready = 'part';
}

// ----- a program -----

async function programView(cid) {
  // A host's part (an order) has events but no steps.
  const first = await api(`/v1/programs/${cid}/events?limit=${EVENTS_PAGE}`).catch(() => null);
  if (first && first.part) return partView(cid, first);
  const params = new URLSearchParams(location.search);
  let step = Number(params.get('step') || 0);
  const view = {
    cid,
    total: 0,
    playing: null,
    eventsStart: null,
    treeCount: 0,
  };
  where.replaceChildren(el('a', { href: '/', text: 'programs' }), ' / ', el('span', { class: 'mono', text: short(cid, 24) }));
  const slider = el('input', { type: 'range', id: 'slider', min: 0, max: 0, value: 0 });
  const stepLabel = el('span', { id: 'step-label', class: 'mono' });
  const play = el('button', { id: 'play', text: '▶ play' });
  const follow = el('input', { type: 'checkbox', id: 'follow' });
  const liveLabel = el('span', { id: 'live', class: 'muted', text: 'live: off' });
  const controls = el('div', { class: 'controls' },
    el('button', { id: 'prev', text: '←', title: 'previous step (←)', onclick: () => go(step - 1) }),
    slider,
    el('button', { id: 'next', text: '→', title: 'next step (→)', onclick: () => go(step + 1) }),
    play, stepLabel, el('label', {}, follow, ' follow'), liveLabel);
  const term = el('pre', { class: 'term', id: 'term' });
  const termLink = el('p', { id: 'term-link' });
  const copy = el('button', { text: 'copy', onclick: () => navigator.clipboard && navigator.clipboard.writeText(term.textContent) });
  const tree = el('div', { id: 'tree' });
  const legend = el('div', { class: 'legend', id: 'legend' });
  const redex = el('div', { id: 'redex' });
  const diff = el('div', { class: 'diff', id: 'diff' });
  const end = el('div', { id: 'end' });
  const dag = el('div', { id: 'dag' });
  const detail = el('pre', { id: 'event-detail', class: 'mono' });
  const panel = (title, ...children) => el('section', { class: 'panel' }, el('h2', { text: title }), ...children);
  app.replaceChildren(controls, el('div', { class: 'grid' },
    el('div', {}, panel('ambients', legend, tree), panel('events', dag, detail)),
    el('div', {}, panel('term', copy, term, termLink), panel('redex', redex), panel('changed by this step', diff), panel('end', end))));

  slider.addEventListener('input', () => go(Number(slider.value)));
  document.addEventListener('keydown', (e) => {
    if (e.target && e.target.tagName === 'INPUT' && e.target.type !== 'range') return;
    if (e.key === 'ArrowLeft') { e.preventDefault(); go(step - 1); }
    if (e.key === 'ArrowRight') { e.preventDefault(); go(step + 1); }
  });
  play.addEventListener('click', () => {
    if (view.playing) { clearInterval(view.playing); view.playing = null; play.textContent = '▶ play'; return; }
    play.textContent = '❚❚ pause';
    view.playing = setInterval(() => { if (step >= view.total) play.click(); else go(step + 1); }, 400);
  });

  let pending = null;
  async function go(k) {
    k = Math.max(0, view.loaded ? Math.min(k, view.total) : k);
    step = k;
    const started = performance.now();
    const request = (pending = render(k, started));
    await request;
  }
  inspector.go = go;

  async function render(k, started) {
    let state;
    try {
      state = await api(`/v1/programs/${cid}/steps/${k}?max_nodes=${TREE_PAGE}`);
    } catch (error) {
      showError(error);
      return;
    }
    if (k !== step) return; // a later move won
    view.loaded = true;
    view.total = state.total_steps;
    slider.max = state.total_steps;
    slider.value = state.step;
    stepLabel.textContent = `step ${state.step} of ${state.total_steps}`;
    history.replaceState(null, '', `/programs/${cid}?step=${state.step}`);
    // The term, exactly as `amb inspect --at K --json` gives it.
    if (state.term !== undefined) {
      term.textContent = state.term;
      termLink.replaceChildren();
    } else {
      term.textContent = '';
      termLink.replaceChildren(el('a', { href: `/v1/programs/${cid}/steps/${state.step}/term`, id: 'term-url', text: `the term (${state.term_bytes} bytes)` }));
    }
    term.dataset.step = state.step;
    drawTree(state);
    drawRedex(state);
    drawEnd(state);
    inspector.step = state.step;
    inspector.renderMs = performance.now() - started;
    document.body.dataset.ready = `step-${state.step}`;
    // What follows needs another request each; the step is shown already.
    drawDiff(state).catch(() => {});
    drawEvents(state).catch(() => {});
  }

  function drawTree(state) {
    const added = new Set(state.changes ? state.changes.added : []);
    legend.replaceChildren(...Object.entries(state.hosts).map(([peer, hosted]) =>
      el('span', { title: `${peer} hosts ${hosted.slices.join(', ')}${hosted.count > hosted.slices.length ? ', …' : ''}` },
        el('i', { style: `background:${color(peer)}` }), short(peer, 14), ` (${hosted.count}${state.hosts_complete === false ? '+' : ''} slices)`)));
    const root = el('div', { class: 'top' });
    view.treeCount = 0;
    addNodes(root, state.nodes, added, state.step);
    addMore(root, state.more, '', added, state.step);
    if (state.changes) addGhosts(root, state.changes.removed);
    tree.replaceChildren(root);
    inspector.treeNodes = view.treeCount;
  }

  // What the step removed (consumed, opened, moved away), drawn ghosted where it
  // was: in its ambient's box when that is shown, else at the top; the step's
  // redex (the two capabilities it consumed) marked.
  function addGhosts(root, removed) {
    const ghosts = new Map();
    for (const r of removed) {
      const text = r.kind === 'cap' ? (r.name ? `${r.cap} ${r.name}` : r.cap) : r.name;
      const node = r.kind === 'cap'
        ? el('span', { class: 'capgroup removed' + (r.redex ? ' redex' : ''), 'data-id': r.id },
          el('span', { class: 'chip removed' + (r.redex ? ' redex' : ''), title: r.redex ? 'consumed by this step (its redex)' : 'removed by this step', text }))
        : el('div', { class: 'amb removed', 'data-id': r.id, title: 'removed from here by this step' }, el('div', { class: 'name', text }), el('div', { class: 'body' }));
      ghosts.set(r.id, node);
    }
    for (const r of removed) {
      const node = ghosts.get(r.id);
      const ghost = r.parent && ghosts.get(r.parent);
      const live = r.parent && root.querySelector(`.amb[data-id="${r.parent}"]:not(.removed) > .body`);
      const parent = ghost ? ghost.querySelector('.body') : live || root;
      parent.prepend(node);
    }
  }

  function addNodes(container, nodes, added, k) {
    const made = [];
    nodes.forEach((n, i) => {
      let node;
      let inner;
      if (n.kind === 'ambient') {
        inner = el('div', { class: 'body' });
        node = el('div', { class: 'amb' + (added.has(n.id) ? ' added' : ''), style: `--host:${color(n.host)}`, 'data-path': n.path, 'data-id': n.id, title: `${n.log_name || n.name} hosted by ${n.host || '?'}` },
          el('div', { class: 'name', text: n.name }), inner);
      } else if (n.kind === 'cap') {
        inner = el('span', { class: 'cont' });
        const text = n.name ? `${n.cap} ${n.name}` : n.cap;
        node = el('span', { class: 'capgroup' + (added.has(n.id) ? ' added' : ''), 'data-path': n.path, 'data-id': n.id },
          el('span', { class: `chip ${n.enabled ? 'enabled' : 'waiting'}${added.has(n.id) ? ' added' : ''}`, title: n.enabled ? 'enabled' : 'waiting for the prefix before it', text }), inner);
      } else {
        node = el('span');
        inner = node;
      }
      view.treeCount += 1;
      if (n.hidden) {
        const button = el('button', { class: 'hidden-more', 'data-path': n.path, text: `+${n.hidden} hidden` });
        button.addEventListener('click', () => expand(button, inner, n.path, added, k));
        inner.append(button);
      }
      made[i] = inner;
      const parent = n.parent === null || n.parent === undefined ? container : made[n.parent];
      if (n.kind === 'cap' && parent !== container && nodes[n.parent].kind === 'cap') parent.append(' . ');
      parent.append(node);
    });
  }

  // A level with more children than one answer holds: a button for the next page.
  function addMore(container, more, path, added, k) {
    if (!more) return;
    const button = el('button', { class: 'hidden-more', 'data-path': path, text: `+${more.count} more here` });
    button.addEventListener('click', () => expand(button, container, path, added, k, more.from));
    container.append(button);
  }

  async function expand(button, inner, path, added, k, from = 0) {
    if (view.treeCount + TREE_PAGE > MAX_TREE_NODES) {
      button.textContent = 'too many nodes shown: collapse others first (reload)';
      return;
    }
    const answer = await api(`/v1/programs/${cid}/steps/${k}?max_nodes=${TREE_PAGE}&path=${encodeURIComponent(path)}&from=${from}`);
    button.remove();
    addNodes(inner, answer.nodes, added, k);
    addMore(inner, answer.more, path, added, k);
    inspector.treeNodes = view.treeCount;
  }

  function describe(e) {
    return e ? `${e.log_name}#${e.seq} ${e.op} ${short(e.target, 20)} by ${short(e.peer, 16)}` : '(not stored)';
  }

  function drawRedex(state) {
    if (!state.redex) {
      redex.replaceChildren(el('p', { class: 'muted', text: state.step === 0 ? 'the deployed program, before any step' : '' }));
      return;
    }
    redex.replaceChildren(
      el('div', { class: 'mono' }, 'first half: ', describe(state.redex.first)),
      el('div', { class: 'mono' }, 'second half: ', describe(state.redex.second)));
  }

  // The line diff of the terms when they are small (else what the tree marks).
  async function drawDiff(state) {
    const k = state.step;
    if (k === 0) { diff.replaceChildren(el('p', { class: 'muted', text: 'nothing before step 0' })); return; }
    if (state.term === undefined) {
      const c = state.changes;
      diff.replaceChildren(el('p', { class: 'muted', text: `${c.added.length} added and ${c.removed.length} removed${c.more ? ` (and ${c.more} more)` : ''}: marked in the tree (the terms are too large to diff here)` }));
      return;
    }
    const answer = await api(`/v1/programs/${cid}/diff?from=${k - 1}&to=${k}`);
    if (k !== step) return;
    const changed = answer.lines.filter((l) => l[0] !== ' ');
    diff.replaceChildren(...changed.slice(0, 400).map((l) => el('div', { class: l[0] === '+' ? 'add' : 'del', text: l })));
  }

  function drawEnd(state) {
    if (state.step !== state.total_steps) {
      end.replaceChildren(el('p', { class: 'muted', text: `at the last step (${state.total_steps}): the value, or why it is stuck` }));
      return;
    }
    const parts = [];
    if (state.value !== null && state.value !== undefined) {
      parts.push(el('p', {}, 'value: ', el('code', { id: 'value', text: JSON.stringify(state.value) })));
    }
    if (state.stuck) {
      parts.push(el('p', { text: 'stuck: the capabilities left and what each waits for' }));
      parts.push(el('ul', { class: 'stuck', id: 'stuck' }, ...state.stuck.waiting.map((w) =>
        el('li', {}, el('code', { text: w.target ? `${w.cap} ${w.target}` : w.cap }), ` in ${w.ambient || 'the top level'}: ${w.reason}`))));
      if (state.stuck.more) parts.push(el('p', { text: `and ${state.stuck.more} more` }));
    }
    if (!parts.length) parts.push(el('p', { text: 'a normal form' }));
    end.replaceChildren(...parts);
  }

  // The page of events around the step (fetched once per page and program size).
  async function drawEvents(state) {
    const current = state.redex && state.redex.second ? state.redex.second.index : 0;
    const start = Math.max(0, current - (current % EVENTS_PAGE));
    const key = `${start}/${state.events}`;
    if (!view.eventsPage || view.eventsPage.key !== key) {
      const answer = await api(`/v1/programs/${cid}/events?limit=${EVENTS_PAGE}${start ? `&after=${start - 1}` : ''}`);
      view.eventsPage = { key, answer };
    }
    const answer = view.eventsPage.answer;
    if (state.step !== step) return;
    const lanes = new Map();
    for (const e of answer.events) if (!lanes.has(e.log)) lanes.set(e.log, lanes.size);
    const x = (i) => 40 + (i - start) * 22;
    const y = (log) => 22 + lanes.get(log) * 30;
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    const width = x(start + answer.events.length) + 20;
    svg.setAttribute('class', 'dag');
    svg.setAttribute('width', width);
    svg.setAttribute('height', 22 + lanes.size * 30);
    const at = new Map();
    answer.events.forEach((e) => at.set(e.cid, [x(e.index), y(e.log)]));
    for (const e of answer.events) {
      for (const r of e.refs) {
        if (!at.has(r)) continue;
        const line = document.createElementNS(ns, 'line');
        const [x1, y1] = at.get(e.cid);
        const [x2, y2] = at.get(r);
        Object.entries({ x1, y1, x2, y2, class: 'ref' }).forEach(([k, v]) => line.setAttribute(k, v));
        svg.append(line);
      }
    }
    const redexCids = new Set([state.redex && state.redex.first && state.redex.first.cid, state.redex && state.redex.second && state.redex.second.cid]);
    for (const e of answer.events) {
      const g = document.createElementNS(ns, 'g');
      g.setAttribute('class', 'ev' + (redexCids.has(e.cid) ? ' current' : ''));
      const circle = document.createElementNS(ns, 'circle');
      const [cx, cy] = at.get(e.cid);
      Object.entries({ cx, cy, r: 7, fill: color(e.peer) }).forEach(([k, v]) => circle.setAttribute(k, v));
      const title = document.createElementNS(ns, 'title');
      title.textContent = `${e.log_name}#${e.seq} ${e.op}`;
      g.append(circle, title);
      g.addEventListener('click', () => {
        detail.textContent = JSON.stringify({ ...e, rules: e.verified ? 'replayed: order, bytecode, reduction, duality, log-id, key (spec/events.md §7); signature checked when stored' : 'not replayed' }, null, 1);
      });
      svg.append(g);
    }
    const nav = el('div', { class: 'muted' }, `events ${start}–${start + answer.events.length - 1} of ${answer.total}, one lane per log, coloured by writer`);
    dag.replaceChildren(nav, svg);
  }

  // Live: follow the node's event stream (only a node has one).
  function live() {
    let timer = null;
    stream(`/v1/events?program=${cid}`, {
      open: () => { liveLabel.textContent = 'live: on'; inspector.live = 'on'; },
      error: () => { liveLabel.textContent = 'live: unavailable'; inspector.live = 'unavailable'; },
      stored: (data) => {
      inspector.received = (inspector.received || 0) + 1;
      inspector.lastStored = JSON.parse(data);
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const before = view.total;
        const latest = await api(`/v1/programs/${cid}/steps/${step}/term`).catch(() => null);
        if (!latest) return;
        view.total = latest.total_steps;
        if (follow.checked || step === before) go(view.total);
        else go(step);
      }, 250);
      },
    });
  }

  await go(step);
  live();
}

async function main() {
  const match = location.pathname.match(/^\/programs\/([^/]+)$/);
  try {
    if (match) await programView(decodeURIComponent(match[1]));
    else await listView();
  } catch (error) {
    showError(error);
  }
}

main();
