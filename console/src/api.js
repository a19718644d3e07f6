// Calls to the same-origin APIs: the session cookie goes with every request,
// state-changing requests carry the CSRF token, and failures become ApiError
// with the body's {"error","message","field"}.
import { t } from './i18n.js';

export const session = { user: null, csrf: '' };

// Called when an API answers 401 outside the login form (the session ended).
let onUnauthorized = null;
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const b = body && typeof body === 'object' ? body : {};
    super(b.message || b.error || (status ? t('error.status', { status }) : t('error.network')));
    this.status = status;
    this.field = b.field || '';
    this.body = b;
    this.retryAfter = retryAfter ? parseInt(retryAfter, 10) : null;
  }
}

export async function api(path, options = {}) {
  const method = options.method || 'GET';
  const headers = { Accept: 'application/json', ...(options.headers || {}) };
  const init = { method, credentials: 'same-origin', headers };
  if (options.body !== undefined) {
    init.body = JSON.stringify(options.body);
    headers['Content-Type'] = 'application/json';
  }
  if (method !== 'GET' && method !== 'HEAD' && session.csrf) headers['X-CSRF-Token'] = session.csrf;
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, null, null);
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (e) {
    data = null;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data || { message: text.slice(0, 300) }, res.headers.get('Retry-After'));
    if (res.status === 401 && !options.no401 && onUnauthorized) onUnauthorized();
    throw err;
  }
  return data;
}

export async function loadSession() {
  try {
    const s = await api('/console/api/session', { no401: true });
    session.user = s.user;
    session.csrf = s.csrf_token || '';
  } catch (e) {
    if (e.status !== 401) throw e;
    session.user = null;
    session.csrf = '';
  }
  return session.user;
}

export async function login(name, password) {
  const s = await api('/console/api/login', { method: 'POST', body: { name, password }, no401: true });
  session.user = s.user;
  session.csrf = s.csrf_token || '';
  return s.user;
}

export async function logout() {
  try {
    await api('/console/api/logout', { method: 'POST', no401: true });
  } finally {
    session.user = null;
    session.csrf = '';
  }
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
