// Flotilla dashboard: live refresh of server-rendered pages over Server-Sent Events, and a
// confirmation for destructive actions. No inline script anywhere: the Content-Security-Policy
// allows only this file.
(function () {
  'use strict';

  document.addEventListener('submit', function (e) {
    var msg = e.target.getAttribute('data-confirm');
    if (msg && !window.confirm(msg)) { e.preventDefault(); }
  });

  var main = document.getElementById('main');
  var dot = document.getElementById('live');
  if (!main || !main.dataset.live || !window.EventSource) { return; }

  // "Kind:name" pairs this page shows; "*" matches any.
  var interest = main.dataset.live.split(' ').map(function (s) { return s.split(':'); });
  var kinds = [];
  interest.forEach(function (p) { if (p[0] !== '*' && kinds.indexOf(p[0]) < 0) { kinds.push(p[0]); } });
  var anyKind = interest.some(function (p) { return p[0] === '*'; });
  var url = '/ui/events?after=' + encodeURIComponent(main.dataset.seq || '0');
  if (!anyKind) { url += '&kinds=' + encodeURIComponent(kinds.join(',')); }

  var every = parseInt(main.dataset.every || '0', 10) || 0;
  var timer = null, busy = false, again = false, last = 0;
  function matches(c) {
    return interest.some(function (p) {
      return (p[0] === '*' || p[0] === c.kind) && (p[1] === '*' || p[1] === c.name);
    });
  }
  // A short debounce gathers a burst of changes; pages about many clusters also keep a least
  // interval between refreshes.
  function schedule() {
    if (!timer) { timer = window.setTimeout(refresh, Math.max(30, last + every - Date.now())); }
  }
  function refresh() {
    timer = null;
    if (busy) { again = true; return; }
    busy = true;
    last = Date.now();
    fetch(window.location.href, { headers: { 'X-Flotilla-Fragment': 'main' }, credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined) {
          main.innerHTML = html;
          document.body.setAttribute('data-refreshed', String(Date.now()));
        }
      })
      .catch(function () { /* the next change or reconnect tries again */ })
      .then(function () {
        busy = false;
        if (again) { again = false; schedule(); }
      });
  }

  var es = new EventSource(url);
  es.addEventListener('open', function () { if (dot) { dot.className = 'live on'; } });
  es.addEventListener('error', function () { if (dot) { dot.className = 'live off'; } });
  es.addEventListener('change', function (e) {
    var c;
    try { c = JSON.parse(e.data); } catch (err) { return; }
    if (matches(c)) { schedule(); }
  });
})();
