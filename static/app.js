// Copy buttons: <button data-copy="#id"> copies the text of the target element.
document.addEventListener("click", function (ev) {
  var btn = ev.target.closest("[data-copy]");
  if (!btn) return;
  var target = document.querySelector(btn.getAttribute("data-copy"));
  if (!target) return;
  var text = target.value !== undefined ? target.value : target.textContent;
  // What was copied last; lets the browser tests check it without clipboard permissions.
  window.__lastCopied = text;
  var done = function () {
    var old = btn.textContent;
    btn.textContent = "✓";
    setTimeout(function () { btn.textContent = old; }, 1200);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
  } else {
    fallback(text);
    done();
  }
});

function fallback(text) {
  var ta = document.createElement("textarea");
  ta.value = text;
  ta.setAttribute("readonly", "");
  ta.style.position = "absolute";
  ta.style.left = "-9999px";
  document.body.appendChild(ta);
  ta.select();
  try { document.execCommand("copy"); } catch (e) { /* nothing else to try */ }
  document.body.removeChild(ta);
}

// Forms that ask first: <form data-confirm="Question?">. Kept here rather than in an
// onsubmit attribute, because the Content-Security-Policy allows no inline script.
document.addEventListener("submit", function (ev) {
  var form = ev.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.getAttribute("data-confirm"))) ev.preventDefault();
}, true);

// Pages send no Referer (Referrer-Policy: no-referrer), so the language links carry the way
// back themselves.
document.addEventListener("click", function (ev) {
  var link = ev.target.closest("a[href^='/lang/']");
  if (!link) return;
  var back = window.location.pathname + window.location.search;
  link.setAttribute("href", link.getAttribute("href").split("?")[0] + "?next=" + encodeURIComponent(back));
}, true);
