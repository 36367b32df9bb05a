// The dashboard's only way to the server: named operations from /assets/operations/*.graphql,
// sent to POST /graphql, and subscriptions over graphql-transport-ws at /graphql/ws.

const TOKEN_KEY = 'runflow.token';

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** An error from the API with its stable `extensions.code`. */
export class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const documents = new Map();

/** The text of an operations file (loaded once). */
export function documentOf(file) {
  if (!documents.has(file)) {
    documents.set(file, fetch(`/assets/operations/${file}.graphql`).then((r) => {
      if (!r.ok) throw new ApiError('INTERNAL', `cannot load operations/${file}.graphql`);
      return r.text();
    }));
  }
  return documents.get(file);
}

/** Runs the named query or mutation of `file`; resolves to `data` or throws ApiError. */
export async function run(file, operationName, variables = {}) {
  const query = await documentOf(file);
  const headers = { 'content-type': 'application/json' };
  if (session.token) headers.authorization = `Bearer ${session.token}`;
  let response;
  try {
    response = await fetch('/graphql', {
      method: 'POST', headers, body: JSON.stringify({ query, operationName, variables }),
    });
  } catch (error) {
    throw new ApiError('NETWORK', `The server cannot be reached (${error.message}).`);
  }
  let body;
  try { body = await response.json(); } catch { throw new ApiError('INTERNAL', `The server answered ${response.status}.`); }
  if (body.errors && body.errors.length) {
    const first = body.errors[0];
    const code = first.extensions?.code || 'ERROR';
    // An expired or revoked token: back to the sign-in form.
    if (code === 'UNAUTHENTICATED') window.dispatchEvent(new Event('runflow:signed-out'));
    throw new ApiError(code, first.message);
  }
  return body.data;
}

/**
 * A graphql-transport-ws connection shared by every live view: it reconnects with backoff and
 * re-subscribes each subscription after its last cursor, so nothing is missed or repeated.
 */
class Live {
  constructor() {
    this.subs = new Map();
    this.socket = null;
    this.acked = false;
    this.nextId = 1;
    this.retry = 0;
    this.listeners = new Set();
    this.state = 'idle';
  }

  setState(state) {
    this.state = state;
    for (const listener of this.listeners) listener(state);
  }

  onState(listener) { this.listeners.add(listener); return () => this.listeners.delete(listener); }

  /**
   * Subscribes to the named subscription of live.graphql. `variables` must not include `after`:
   * it is set from the last delivered event's cursor. `onEvent(field)` gets the event object.
   * Returns a function that unsubscribes.
   */
  subscribe(operationName, variables, onEvent, onError = () => {}) {
    const id = String(this.nextId++);
    const sub = { id, operationName, variables, onEvent, onError, cursor: variables.after ?? null };
    this.subs.set(id, sub);
    this.ensure();
    if (this.acked) this.send(sub);
    return () => {
      this.subs.delete(id);
      if (this.acked && this.socket) this.socket.send(JSON.stringify({ id, type: 'complete' }));
      if (!this.subs.size) this.close();
    };
  }

  async send(sub) {
    const query = await documentOf('live');
    if (!this.acked || !this.subs.has(sub.id)) return;
    const variables = { ...sub.variables, after: sub.cursor };
    this.socket.send(JSON.stringify({ id: sub.id, type: 'subscribe', payload: { query, operationName: sub.operationName, variables } }));
  }

  ensure() {
    if (this.socket || !this.subs.size) return;
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql/ws`;
    const socket = new WebSocket(url, 'graphql-transport-ws');
    this.socket = socket;
    this.setState('connecting');
    socket.onopen = () => {
      socket.send(JSON.stringify({ type: 'connection_init', payload: { Authorization: `Bearer ${session.token}` } }));
    };
    socket.onmessage = (message) => {
      let frame;
      try { frame = JSON.parse(message.data); } catch { return; }
      if (frame.type === 'connection_ack') {
        this.acked = true;
        this.retry = 0;
        this.setState('live');
        for (const sub of this.subs.values()) this.send(sub);
      } else if (frame.type === 'ping') {
        socket.send(JSON.stringify({ type: 'pong' }));
      } else if (frame.type === 'next') {
        const sub = this.subs.get(frame.id);
        const data = frame.payload?.data;
        if (!sub || !data) return;
        const event = Object.values(data)[0];
        if (event?.cursor) sub.cursor = event.cursor;
        sub.onEvent(event);
      } else if (frame.type === 'error') {
        const sub = this.subs.get(frame.id);
        if (!sub) return;
        const code = frame.payload?.[0]?.extensions?.code;
        if (code === 'CURSOR_EXPIRED') sub.cursor = null;
        sub.onError(new ApiError(code || 'ERROR', frame.payload?.[0]?.message || 'subscription failed'));
        // Resume after SLOW_CONSUMER (or from now after CURSOR_EXPIRED) on the same socket.
        if (code === 'SLOW_CONSUMER' || code === 'CURSOR_EXPIRED') setTimeout(() => this.send(sub), 200);
      } else if (frame.type === 'complete') {
        // The server ended it (e.g. after SLOW_CONSUMER): subscribe again after the last cursor.
        const sub = this.subs.get(frame.id);
        if (sub) setTimeout(() => this.send(sub), 200);
      }
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.acked = false;
      if (event.code === 4403) {
        this.setState('signed-out');
        window.dispatchEvent(new Event('runflow:signed-out'));
        for (const sub of this.subs.values()) sub.onError(new ApiError('UNAUTHENTICATED', 'Your sign-in expired.'));
        return;
      }
      if (!this.subs.size) { this.setState('idle'); return; }
      this.setState('reconnecting');
      const delay = Math.min(5000, 250 * 2 ** this.retry++);
      setTimeout(() => this.ensure(), delay);
    };
  }

  /** Drops the socket (the test uses it to simulate a lost connection). */
  drop() { if (this.socket) this.socket.close(); }

  close() {
    const socket = this.socket;
    this.socket = null;
    this.acked = false;
    if (socket) socket.close(1000);
    this.setState('idle');
  }
}

export const live = new Live();
window.__runflowLive = live;
