// Pigeon console: live refresh of the messaging logs and of the handset conversation, the
// account switcher's submit-on-change, and an error page's Back. Everything else works without
// JavaScript. No page holds inline script: the Content-Security-Policy refuses it.
(function () {
  "use strict";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); });
  }

  // -- messaging logs: poll the JSON endpoint while "Live refresh" is on ---------------------
  function logRow(root, m) {
    var tr = el("tr");
    var first = el("td");
    first.appendChild(el("a", { href: root + "/messages/" + m.sid }, m.date_created));
    tr.appendChild(first);
    tr.appendChild(el("td", {}, m.direction));
    tr.appendChild(el("td", {}, m.from));
    tr.appendChild(el("td", {}, m.to));
    var st = el("td");
    st.appendChild(el("span", { "class": "status " + m.status_class }, m.status));
    tr.appendChild(st);
    var err = el("td");
    if (m.error_code) err.appendChild(el("span", { "class": "code" }, m.error_code));
    tr.appendChild(err);
    tr.appendChild(el("td", { "class": "body" }, m.body));
    return tr;
  }

  function setupLive() {
    var toggle = document.getElementById("live-toggle");
    if (!toggle) return;
    toggle.parentElement.hidden = false;
    var body = document.getElementById(toggle.getAttribute("data-live-target"));
    var url = toggle.getAttribute("data-live-url");
    var root = body.getAttribute("data-root");
    var timer = null;
    function refresh() {
      getJSON(url).then(function (data) {
        body.textContent = "";
        if (!data.messages.length) {
          var tr = el("tr", { "class": "empty" });
          tr.appendChild(el("td", { colspan: "7" }, "No messages match these filters."));
          body.appendChild(tr);
        }
        data.messages.forEach(function (m) { body.appendChild(logRow(root, m)); });
      }).catch(function () {});
    }
    function apply() {
      if (timer) { clearInterval(timer); timer = null; }
      try { localStorage.setItem("pigeon.live", toggle.checked ? "1" : "0"); } catch (e) {}
      if (toggle.checked) { refresh(); timer = setInterval(refresh, 3000); }
    }
    try { toggle.checked = localStorage.getItem("pigeon.live") === "1"; } catch (e) {}
    toggle.addEventListener("change", apply);
    apply();
  }

  // -- handset simulator: poll the conversation ------------------------------------------------
  function bubble(root, m) {
    var li = el("li", { "class": "bubble " + (m.inbound ? "mine" : "theirs") });
    li.appendChild(el("div", { "class": "text" }, m.body));
    var meta = el("div", { "class": "meta" });
    meta.appendChild(el("a", { href: root + "/messages/" + m.sid }, m.at));
    meta.appendChild(document.createTextNode(" · "));
    meta.appendChild(el("span", { "class": "status " + m.status_class }, m.status));
    if (m.error_code) { meta.appendChild(document.createTextNode(" ")); meta.appendChild(el("span", { "class": "code" }, m.error_code)); }
    if (m.webhook) {
      meta.appendChild(document.createTextNode(m.webhook.ok ? " · webhook answered" : " · webhook failed "));
      if (!m.webhook.ok && m.webhook.error_code) meta.appendChild(el("span", { "class": "code" }, m.webhook.error_code));
    }
    li.appendChild(meta);
    return li;
  }

  function setupConversation() {
    var list = document.getElementById("conversation");
    if (!list) return;
    var url = list.getAttribute("data-poll-url");
    var root = list.getAttribute("data-root");
    var last = "";
    function refresh() {
      getJSON(url).then(function (data) {
        var key = JSON.stringify(data.messages);
        if (key === last) return;
        last = key;
        list.textContent = "";
        if (!data.messages.length) list.appendChild(el("li", { "class": "muted empty" }, "No messages between these two numbers yet."));
        data.messages.forEach(function (m) { list.appendChild(bubble(root, m)); });
        list.scrollTop = list.scrollHeight;
      }).catch(function () {});
    }
    list.scrollTop = list.scrollHeight;
    setInterval(refresh, 1500);
  }

  function setupAutosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
      s.addEventListener("change", function () { s.form.submit(); });
    });
  }

  // An error page's "Back" goes back in history; without JavaScript it goes to the console's home.
  function setupBack() {
    document.querySelectorAll("a[data-back]").forEach(function (a) {
      a.addEventListener("click", function (event) {
        if (history.length < 2) return;
        event.preventDefault();
        history.back();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupLive();
    setupConversation();
    setupAutosubmit();
    setupBack();
  });
})();
