// The source viewer: one document version, as the caller may read it now, with the cited
// passage marked. Everything shown comes from GET /v1/documents/{doc_id}/versions/{version},
// which checks the caller's permission again on every call.
import { api, documentApiAddress, el, errorText, show, when } from './page.js';

const $ = (id) => document.getElementById(id);

function refuse(message) {
  show($('loading'), false);
  $('viewer-error').textContent = message;
  show($('viewer-error'));
}

async function start() {
  const address = documentApiAddress(window.location.pathname, window.location.search);
  if (!address) {
    refuse('This is not the address of a document version.');
    return;
  }
  const response = await api(address);
  if (response.status === 401) {
    refuse('You are not signed in. Sign in on the Clearance page, then open the source again.');
    return;
  }
  if (response.status === 404) {
    let current = null;
    try {
      current = (await response.json()).current_version || null;
    } catch (_) { /* no body */ }
    if (current) {
      // Only a caller who may read the document is told its current version.
      refuse('This version of the document has been replaced since it was cited.');
      const link = el('a', {
        text: 'Open the current version',
        attrs: { href: window.location.pathname.replace(/\/versions\/[^/]+$/, `/versions/${current}`) },
      });
      $('viewer-error').after(el('p', { cls: 'panel' }, [link]));
      return;
    }
    refuse('This document version is not available to you: it may not exist, or you may not '
      + 'have access to it.');
    return;
  }
  if (!response.ok) {
    refuse(await errorText(response));
    return;
  }
  const doc = await response.json();
  document.title = `${doc.title || doc.doc_id}: Clearance`;
  $('doc-title').textContent = doc.title || doc.doc_id;
  $('doc-source').textContent = `${doc.source} \u00b7 ${doc.uri}`;
  $('doc-version').textContent = doc.doc_version;
  $('doc-modified').textContent = when(doc.source_modified_at);
  $('doc-ingested').textContent = when(doc.ingested_at);
  $('doc-index').textContent = doc.index_version;
  if (doc.file && doc.file.available) {
    $('download-link').setAttribute('href', doc.file.url);
    show($('download'));
  }
  let cited = null;
  const sections = doc.sections.map((section) => {
    // The nearest heading, unless the passage starts with it anyway; and the page.
    const named = section.section && !section.text.startsWith(section.section)
      ? section.section : null;
    const heading = [named, section.page !== null && section.page !== undefined
      ? `page ${section.page}` : null].filter(Boolean).join(' \u00b7 ');
    const text = el('p', { cls: 'chunk-text', text: section.text });
    const node = el('section', {
      cls: section.cited ? 'chunk cited' : 'chunk',
      attrs: { id: `chunk-${section.chunk_index}` },
    }, [
      section.cited ? el('p', { cls: 'cited-label', text: 'Cited passage' }) : null,
      heading ? el('p', { cls: 'chunk-heading', text: heading }) : null,
      text,
    ]);
    if (section.cited) {
      node.setAttribute('tabindex', '-1');
      node.setAttribute('aria-label', 'Cited passage');
      cited = cited || node;
    }
    return node;
  });
  $('sections').replaceChildren(...sections);
  if (!doc.complete) {
    $('sections').before(el('p', {
      cls: 'notice',
      attrs: { role: 'note' },
      text: `This document is longer than the viewer shows: only ${doc.sections.length} of its `
        + 'passages are here. Download the original to read it all.',
    }));
  }
  show($('loading'), false);
  show($('document'));
  if (cited) {
    $('cited-link').setAttribute('href', `#${cited.id}`);
    show($('cited-note'));
    cited.scrollIntoView({ block: 'center' });
    cited.focus({ preventScroll: true });
  }
}

start();
