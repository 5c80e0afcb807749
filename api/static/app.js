// The chat page: sign in, ask, read the streamed answer and its citations, rate it.
import {
  api, el, errorText, shortVersion, show, useCsrfToken, viewerAddress, when,
} from './page.js';

// Each answer's mode (answers/answer.py), in words.
const MODES = {
  extractive: 'Quoted from your sources',
  generated: 'Written by the model from your sources',
  repaired: 'Written by the model; its citations were checked and repaired',
  replaced: 'The model\u2019s answer was not supported by your sources: quoted instead',
  fallback: 'Model unavailable: extractive answer',
  abstain: 'Not found in sources you can access',
};

// Why a sign-in at the identity provider failed (api/routes/signin.py), in words.
const SIGN_IN_FAILURES = {
  expired: 'The sign-in took too long, or was started in another browser. Try again.',
  refused: 'The identity provider did not sign you in.',
  state: 'The sign-in could not be matched to this browser. Try again.',
  provider: 'The identity provider could not complete the sign-in. Try again, or ask IT.',
  token: 'This service did not accept your organisation\u2019s sign-in. Ask an administrator.',
  user: 'Your account may not use this service (unknown or deactivated). Ask an administrator.',
  unavailable: 'The identity provider cannot be reached now. Try later, or use a personal key.',
};

const $ = (id) => document.getElementById(id);
const conversation = []; // earlier turns, sent with each question: {role, content}
const MAX_TURNS = 10;
let turnCount = 0;
let sessionTimer = null;

function setNotice(message) {
  $('notice').textContent = message || '';
  show($('notice'), Boolean(message));
}

function announce(message) {
  $('announcer').textContent = message;
}

async function showSignIn(message) {
  clearInterval(sessionTimer);
  useCsrfToken(null);
  show($('loading'), false);
  show($('chat'), false);
  show($('who'), false);
  show($('sign-in'));
  $('sign-in-error').textContent = message || '';
  show($('sign-in-error'), Boolean(message));
  const options = await api('/auth/options');
  if (options.ok) show($('org-sign-in'), (await options.json()).organisation);
}

function showChat(session) {
  useCsrfToken(session.csrf_token);
  show($('loading'), false);
  show($('sign-in'), false);
  $('who-name').textContent = session.user;
  show($('who'));
  show($('chat'));
  setNotice(session.paused.message);
  clearInterval(sessionTimer);
  sessionTimer = setInterval(refreshSession, 60000);
  $('question').focus();
}

async function refreshSession() {
  const response = await api('/auth/session');
  if (response.ok) {
    const session = await response.json();
    useCsrfToken(session.csrf_token);
    setNotice(session.paused.message);
  } else if (response.status === 401) {
    await showSignIn('Your session has ended. Sign in again.');
  }
}

async function signInWithKey(event) {
  event.preventDefault();
  const key = $('key').value.trim();
  const response = await api('/auth/key', { method: 'POST', body: { key } });
  $('key').value = '';
  if (response.ok) {
    showChat(await response.json());
    return;
  }
  const reasons = {
    401: 'That key is unknown, revoked or expired.',
    429: 'Too many attempts. Wait a minute and try again.',
  };
  await showSignIn(reasons[response.status] || await errorText(response));
}

async function signOut() {
  await api('/auth/logout', { method: 'POST' });
  conversation.length = 0;
  $('turns').replaceChildren();
  await showSignIn('You are signed out.');
}

function citationItem(citation) {
  const pages = citation.pages && citation.pages.length
    ? `${citation.pages.length > 1 ? 'pages' : 'page'} ${citation.pages.join(', ')}` : null;
  const facts = [
    pages,
    `version ${shortVersion(citation.doc_version)}`,
    `modified ${when(citation.source_modified_at)}`,
    `ingested ${when(citation.ingested_at)}`,
  ].filter(Boolean).join(' \u00b7 ');
  const chunk = citation.chunk_ids && citation.chunk_ids.length ? citation.chunk_ids[0] : null;
  const link = el('a', {
    text: `[${citation.n}] ${citation.title || citation.doc_id}`,
    attrs: {
      href: viewerAddress(citation.doc_id, citation.doc_version, chunk),
      target: '_blank',
      rel: 'noopener noreferrer',
      'aria-label': `Open source ${citation.n}, ${citation.title || citation.doc_id}, `
        + 'at the cited version (opens in a new tab)',
    },
  });
  return el('li', { cls: 'citation' }, [
    link,
    el('span', { cls: 'facts', text: facts }),
    citation.snippet ? el('q', { cls: 'snippet', text: citation.snippet }) : null,
  ]);
}

function feedbackControls(requestId, n) {
  const status = el('span', { cls: 'feedback-status', attrs: { role: 'status' } });
  const comment = el('textarea', {
    attrs: { id: `comment-${n}`, rows: '1', maxlength: '2000' },
  });
  let rating = null;
  const buttons = [];
  async function send() {
    const body = { request_id: requestId, rating };
    if (comment.value.trim()) body.comment = comment.value.trim();
    const response = await api('/v1/feedback', { method: 'POST', body });
    status.textContent = response.ok ? 'Thank you: your rating is saved.'
      : `Not saved: ${await errorText(response)}`;
  }
  // Thumbs up and down, as a glyph every font has, and named in words.
  for (const [value, label, symbol] of [['up', 'Helpful', '\u25B2'],
    ['down', 'Not helpful', '\u25BC']]) {
    const button = el('button', {
      cls: 'thumb',
      attrs: { type: 'button', 'aria-pressed': 'false' },
    }, [el('span', { text: symbol, attrs: { 'aria-hidden': 'true' } }),
      document.createTextNode(` ${label}`)]);
    button.addEventListener('click', async () => {
      rating = value;
      for (const b of buttons) b.setAttribute('aria-pressed', String(b === button));
      await send();
    });
    buttons.push(button);
  }
  const sendComment = el('button', { text: 'Send comment', attrs: { type: 'button' } });
  sendComment.addEventListener('click', async () => {
    if (!rating) {
      status.textContent = 'Choose helpful or not helpful first.';
      return;
    }
    await send();
  });
  return el('div', {
    cls: 'feedback', attrs: { role: 'group', 'aria-label': 'Rate this answer' },
  }, [
    ...buttons,
    el('label', { text: 'Comment (optional)', attrs: { for: `comment-${n}` } }),
    comment, sendComment, status,
  ]);
}

// Server-sent events from /v1/chat: meta, delta..., citations, done.
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      yield { name, data: JSON.parse(data.join('\n') || '{}') };
      end = buffer.indexOf('\n\n');
    }
  }
}

async function ask(event) {
  event.preventDefault();
  const message = $('question').value.trim();
  if (!message) return;
  show($('ask-error'), false);
  turnCount += 1;
  const mode = el('p', { cls: 'mode' });
  const notice = el('p', { cls: 'answer-notice' });
  const text = el('div', { cls: 'answer-text' });
  const sources = el('div', { cls: 'sources' });
  const answer = el('article', {
    cls: 'answer', attrs: { 'aria-busy': 'true', 'aria-label': `Answer ${turnCount}` },
  }, [mode, notice, text, sources]);
  show(notice, false);
  const turn = el('li', { cls: 'turn' }, [
    el('p', { cls: 'question' }, [el('span', { cls: 'visually-hidden', text: 'You asked: ' }),
      document.createTextNode(message)]),
    answer,
  ]);
  $('turns').append(turn);
  $('question').value = '';
  $('ask').disabled = true;
  mode.textContent = 'Searching your sources\u2026';
  try {
    const response = await api('/v1/chat', {
      method: 'POST',
      stream: true,
      body: { message, stream: true, history: conversation.slice(-MAX_TURNS) },
    });
    if (!response.ok) {
      const reason = await errorText(response);
      if (response.status === 401) {
        await showSignIn('Your session has ended. Sign in again.');
        return;
      }
      if (response.status === 503) setNotice(reason);
      mode.textContent = 'No answer';
      text.textContent = response.status === 429 ? 'Too many questions at once: wait a moment.'
        : reason;
      answer.classList.add('failed');
      return;
    }
    let requestId = null;
    let answerText = '';
    for await (const { name, data } of events(response)) {
      if (name === 'meta') {
        requestId = data.request_id;
        mode.textContent = MODES[data.mode] || data.mode;
        answer.dataset.mode = data.mode;
        if (data.notice) {
          notice.textContent = data.notice;
          show(notice);
        }
      } else if (name === 'delta') {
        answerText += data.text;
        text.append(document.createTextNode(data.text));
      } else if (name === 'citations' && data.citations.length) {
        sources.append(el('h3', { text: 'Sources' }),
          el('ol', { cls: 'citations' }, data.citations.map(citationItem)));
      }
    }
    answer.append(feedbackControls(requestId, turnCount));
    conversation.push({ role: 'user', content: message },
      { role: 'assistant', content: answerText });
    announce(`Answer ready: ${mode.textContent}.`);
  } catch (error) {
    mode.textContent = 'No answer';
    text.textContent = 'The connection to the service was lost. Try again.';
    answer.classList.add('failed');
  } finally {
    answer.setAttribute('aria-busy', 'false');
    $('ask').disabled = false;
    $('question').focus();
  }
}

function newConversation() {
  conversation.length = 0;
  $('turns').replaceChildren();
  announce('New conversation.');
  $('question').focus();
}

async function start() {
  $('key-form').addEventListener('submit', signInWithKey);
  $('ask-form').addEventListener('submit', ask);
  $('sign-out').addEventListener('click', signOut);
  $('new-conversation').addEventListener('click', newConversation);
  $('question').addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      $('ask-form').requestSubmit();
    }
  });
  const failure = new URLSearchParams(window.location.search).get('signin');
  if (failure) window.history.replaceState(null, '', '/');
  const response = await api('/auth/session');
  if (response.ok) {
    showChat(await response.json());
  } else {
    await showSignIn(failure ? (SIGN_IN_FAILURES[failure] || 'The sign-in failed. Try again.')
      : null);
  }
}

start();
