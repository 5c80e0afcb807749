// What the chat page and the source viewer share: calls to the API (same origin, the
// session cookie, the CSRF token on every POST), elements made with text only, and how
// versions, times and document addresses are written.

let csrfToken = null;

export function useCsrfToken(token) {
  csrfToken = token;
}

export async function api(path, { method = 'GET', body, stream = false } = {}) {
  const headers = { Accept: stream ? 'text/event-stream' : 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  return fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
  });
}

// The API's own words for a refusal (`error`), or the status when it sent none.
export async function errorText(response) {
  try {
    const data = await response.json();
    if (data && typeof data.error === 'string') return data.error;
  } catch (_) { /* not JSON */ }
  return `The service answered ${response.status}.`;
}

// An element with text content only: nothing from the service is ever parsed as HTML.
export function el(tag, { cls, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) if (child) node.append(child);
  return node;
}

export function show(node, visible = true) {
  node.hidden = !visible;
}

export function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function shortVersion(version) {
  return String(version).slice(0, 12);
}

function encodePath(docId) {
  return String(docId).split('/').map(encodeURIComponent).join('/');
}

// The viewer page of a document version, opened at a chunk.
export function viewerAddress(docId, version, chunkId) {
  const query = chunkId ? `?chunk=${encodeURIComponent(chunkId)}` : '';
  return `/documents/${encodePath(docId)}/versions/${encodeURIComponent(version)}${query}`;
}

// The API address behind a viewer page's address.
export function documentApiAddress(pathname, search) {
  const found = /^\/documents\/(.+)\/versions\/([^/]+)$/.exec(pathname);
  if (!found) return null;
  return `/v1/documents/${found[1]}/versions/${found[2]}${search || ''}`;
}
