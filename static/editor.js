// Bundle editor (Связки): inline name (Enter saves, Escape cancels); template fields edited as
// text with parameter chips ("{{" opens the parameter list while typing, or click a parameter
// button; Enter saves the card, Shift+Enter is a new line); a guard against losing unsaved
// cards when the chain is re-ordered.
// Without this script everything still works: the name is a one-field form, templates are
// plain textareas with {{ field }} placeholders.
(function () {
  "use strict";

  var ZW = "\u200B"; // caret anchor after a chip; never saved
  var VAR_RE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*\}\}/g;
  var uid = 0;

  // ---- inline name: Escape restores the saved name (Enter submits the one-field form) ----
  document.addEventListener("keydown", function (ev) {
    var el = ev.target;
    if (ev.key !== "Escape" || !el.matches || !el.matches("[data-inline-edit]")) return;
    el.value = el.defaultValue;
    el.removeAttribute("aria-invalid");
    ev.preventDefault();
    el.blur();
  });

  // ---- dirty cards ----
  function markDirty(el) {
    var form = el && el.closest && el.closest("[data-step-form]");
    if (form) form.setAttribute("data-dirty", "1");
  }
  document.addEventListener("input", function (ev) { markDirty(ev.target); });
  document.addEventListener("change", function (ev) { markDirty(ev.target); });

  // ---- «Отправить сообщение»: free text or an approved template ----
  // Switching the mode shows that mode's fields at once; the card is then saved, so the
  // server lists the templates and shows the chosen one's variables and preview.
  document.addEventListener("change", function (ev) {
    var el = ev.target;
    if (!el || !el.matches) return;
    var form = el.closest && el.closest("[data-step-form]");
    if (!form) return;
    if (el.matches("[data-mode-switch]")) {
      form.querySelectorAll("[data-mode]").forEach(function (p) {
        p.hidden = p.getAttribute("data-mode") !== el.value;
      });
    } else if (!el.matches("[data-template-choice]")) {
      return;
    }
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  });

  document.addEventListener("htmx:confirm", function (ev) {
    var elt = ev.detail.elt;
    if (!elt.closest || !elt.closest("[data-structural]")) return;
    if (!document.querySelector("[data-step-form][data-dirty]")) return;
    ev.preventDefault();
    // The warning comes from the page, in the admin's language.
    var head = document.querySelector("[data-unsaved]");
    var msg = head ? head.getAttribute("data-unsaved") : "";
    var q = ev.detail.question;
    var text = [q, msg].filter(Boolean).join("\n\n");
    if (!text || window.confirm(text)) ev.detail.issueRequest(true);
  });

  // A card added at the end of the chain: bring it into view and focus its first parameter.
  document.addEventListener("htmx:afterSettle", function (ev) {
    var src = ev.detail.requestConfig && ev.detail.requestConfig.elt;
    if (!src || !src.closest || !src.closest("#add-step")) return;
    var steps = document.querySelectorAll("#chain > .step");
    var last = steps[steps.length - 1];
    if (!last) return;
    last.scrollIntoView({ block: "start" });
    var first = last.querySelector(".step-form select, .step-form input:not([type=hidden])");
    if (first) first.focus();
  });

  // ---- template fields with chips ----
  function parseVars(ta) {
    try { return JSON.parse(ta.getAttribute("data-vars") || "[]"); } catch (e) { return []; }
  }

  function makeChip(v, labels) {
    var s = document.createElement("span");
    s.className = "chip" + (labels[v] ? "" : " unknown");
    s.contentEditable = "false";
    s.setAttribute("data-var", v);
    s.textContent = labels[v] || v;
    return s;
  }

  function appendText(ed, t) {
    t.split("\n").forEach(function (part, i) {
      if (i > 0) ed.appendChild(document.createElement("br"));
      if (part) ed.appendChild(document.createTextNode(part));
    });
  }

  function fill(ed, text, labels) {
    ed.textContent = "";
    var last = 0, m;
    VAR_RE.lastIndex = 0;
    while ((m = VAR_RE.exec(text))) {
      appendText(ed, text.slice(last, m.index));
      ed.appendChild(makeChip(m[1], labels));
      last = m.index + m[0].length;
    }
    appendText(ed, text.slice(last));
  }

  function serialize(node) {
    var out = "";
    node.childNodes.forEach(function (n) {
      if (n.nodeType === 3) {
        out += n.nodeValue;
      } else if (n.nodeType === 1) {
        if (n.hasAttribute("data-var")) out += "{{ " + n.getAttribute("data-var") + " }}";
        else if (n.tagName === "BR") out += "\n";
        else {
          if (out && out.charAt(out.length - 1) !== "\n") out += "\n";
          out += serialize(n);
        }
      }
    });
    return out;
  }

  function clean(s) {
    return s.split(ZW).join("").replace(/\u00A0/g, " ");
  }

  function setCaretAfter(node) {
    var r = document.createRange();
    if (node.nodeType === 3) r.setStart(node, node.nodeValue.length);
    else r.setStartAfter(node);
    r.collapse(true);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(r);
  }

  function setup(ta) {
    if (ta.getAttribute("data-chips") === "on") return;
    ta.setAttribute("data-chips", "on");
    var vars = parseVars(ta);
    var labels = {};
    vars.forEach(function (x) { labels[x.v] = x.l; });
    var n = ++uid;

    var wrap = document.createElement("div");
    wrap.className = "tpl-wrap";
    var ed = document.createElement("div");
    ed.className = "tpl-editor";
    ed.contentEditable = "true";
    ed.id = ta.id + "-editor";
    ed.setAttribute("role", "textbox");
    ed.setAttribute("aria-multiline", "true");
    ed.setAttribute("aria-autocomplete", "list");
    ed.setAttribute("aria-expanded", "false");
    ed.setAttribute("aria-label", ta.getAttribute("aria-label") || "");
    if (ta.getAttribute("aria-describedby")) ed.setAttribute("aria-describedby", ta.getAttribute("aria-describedby"));
    ed.setAttribute("data-template-editor", "");
    var list = document.createElement("ul");
    list.className = "tpl-suggest";
    list.id = "tpl-suggest-" + n;
    list.setAttribute("role", "listbox");
    list.hidden = true;
    ed.setAttribute("aria-controls", list.id);
    wrap.appendChild(ed);
    wrap.appendChild(list);

    var bar = document.createElement("div");
    bar.className = "chip-bar";
    var barLabel = document.createElement("span");
    barLabel.className = "muted small";
    barLabel.textContent = ta.getAttribute("data-insert-label") || "";
    bar.appendChild(barLabel);
    vars.forEach(function (x) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = x.l;
      b.setAttribute("data-insert-var", x.v);
      bar.appendChild(b);
    });

    fill(ed, ta.value, labels);
    ta.hidden = true;
    ta.parentNode.insertBefore(wrap, ta);
    wrap.after(bar);

    var st = { items: [], active: 0, query: null, range: null };

    function sync() {
      ta.value = clean(serialize(ed));
      ta.dispatchEvent(new Event("tpl-change"));
      markDirty(ta);
    }

    function caretText() {
      var sel = window.getSelection();
      if (!sel.rangeCount) return null;
      var r = sel.getRangeAt(0);
      if (!r.collapsed || !ed.contains(r.startContainer) || r.startContainer.nodeType !== 3) return null;
      return { node: r.startContainer, offset: r.startOffset, text: r.startContainer.nodeValue.slice(0, r.startOffset) };
    }

    // "{{ name }}" typed in full becomes a chip at once.
    function autoChip() {
      var c = caretText();
      if (!c) return false;
      var m = /\{\{[\s\u200B]*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)[\s\u200B]*\}\}$/.exec(c.text);
      if (!m || !labels[m[1]]) return false;
      place(m[1], { node: c.node, start: m.index, end: c.offset });
      return true;
    }

    function query() {
      var c = caretText();
      if (!c) return null;
      var m = /\{\{([^{}\n]*)$/.exec(c.text);
      if (!m) return null;
      return { node: c.node, start: m.index, end: c.offset, q: clean(m[1]).trim().toLowerCase() };
    }

    function place(v, q) {
      var range;
      if (q) {
        range = document.createRange();
        range.setStart(q.node, q.start);
        range.setEnd(q.node, q.end);
        range.deleteContents();
      } else if (st.range && ed.contains(st.range.startContainer)) {
        range = st.range;
        range.deleteContents();
      } else {
        range = document.createRange();
        range.selectNodeContents(ed);
        range.collapse(false);
      }
      var chip = makeChip(v, labels);
      range.insertNode(chip);
      var after = document.createTextNode(ZW);
      chip.parentNode.insertBefore(after, chip.nextSibling);
      ed.focus();
      setCaretAfter(after);
      remember();
      closeList();
      sync();
    }

    function remember() {
      var sel = window.getSelection();
      if (sel.rangeCount && ed.contains(sel.getRangeAt(0).startContainer)) st.range = sel.getRangeAt(0).cloneRange();
    }

    function openList(q) {
      var items = vars.filter(function (x) {
        return !q.q || x.v.toLowerCase().indexOf(q.q) >= 0 || x.l.toLowerCase().indexOf(q.q) >= 0;
      });
      if (!items.length) { closeList(); return; }
      st.items = items;
      st.query = q;
      if (st.active >= items.length) st.active = 0;
      list.textContent = "";
      items.forEach(function (x, i) {
        var li = document.createElement("li");
        li.id = list.id + "-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("data-var", x.v);
        li.setAttribute("aria-selected", i === st.active ? "true" : "false");
        li.textContent = x.l;
        var small = document.createElement("span");
        small.className = "muted";
        small.textContent = "{{ " + x.v + " }}";
        li.appendChild(small);
        li.addEventListener("mousedown", function (e) {
          e.preventDefault();
          place(x.v, st.query);
        });
        list.appendChild(li);
      });
      list.hidden = false;
      ed.setAttribute("aria-expanded", "true");
      ed.setAttribute("aria-activedescendant", list.id + "-" + st.active);
    }

    function closeList() {
      list.hidden = true;
      st.items = [];
      st.query = null;
      st.active = 0;
      ed.setAttribute("aria-expanded", "false");
      ed.removeAttribute("aria-activedescendant");
    }

    function highlight(i) {
      st.active = (i + st.items.length) % st.items.length;
      Array.prototype.forEach.call(list.children, function (li, j) {
        li.setAttribute("aria-selected", j === st.active ? "true" : "false");
      });
      ed.setAttribute("aria-activedescendant", list.id + "-" + st.active);
      var cur = list.children[st.active];
      if (cur && cur.scrollIntoView) cur.scrollIntoView({ block: "nearest" });
    }

    ed.addEventListener("input", function () {
      if (autoChip()) return;
      sync();
      var q = query();
      if (q) openList(q); else closeList();
      remember();
    });

    ed.addEventListener("keydown", function (ev) {
      if (!list.hidden && st.items.length) {
        if (ev.key === "ArrowDown") { ev.preventDefault(); highlight(st.active + 1); return; }
        if (ev.key === "ArrowUp") { ev.preventDefault(); highlight(st.active - 1); return; }
        if (ev.key === "Enter" || ev.key === "Tab") {
          ev.preventDefault();
          place(st.items[st.active].v, st.query);
          return;
        }
        if (ev.key === "Escape") { ev.preventDefault(); ev.stopPropagation(); closeList(); return; }
      }
      // As the guide says: Enter confirms the text (saves the card); Shift+Enter is a new line.
      if (ev.key === "Enter" && ev.shiftKey) {
        ev.preventDefault();
        document.execCommand("insertLineBreak");
        return;
      }
      if (ev.key === "Enter") {
        ev.preventDefault();
        sync();
        var form = ta.form;
        if (form && form.requestSubmit) form.requestSubmit(); else if (form) form.submit();
      }
    });

    ed.addEventListener("paste", function (ev) {
      ev.preventDefault();
      var text = (ev.clipboardData || window.clipboardData).getData("text");
      document.execCommand("insertText", false, text);
      fill(ed, clean(serialize(ed)), labels);
      ed.focus();
      setCaretAfter(ed.lastChild || ed);
      sync();
    });

    ed.addEventListener("keyup", remember);
    ed.addEventListener("mouseup", remember);
    ed.addEventListener("blur", function () { remember(); closeList(); });

    bar.addEventListener("click", function (ev) {
      var b = ev.target.closest("[data-insert-var]");
      if (b) place(b.getAttribute("data-insert-var"), null);
    });
  }

  function init(root) {
    if (!root || !root.querySelectorAll) return;
    if (root.matches && root.matches("textarea[data-template]")) setup(root);
    root.querySelectorAll("textarea[data-template]").forEach(setup);
  }

  document.addEventListener("htmx:load", function (ev) { init(ev.detail.elt); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(document); });
  } else {
    init(document);
  }
})();
