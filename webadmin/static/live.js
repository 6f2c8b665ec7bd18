// The dashboard refreshes itself from /api/status every few seconds (no reload, no framework).
(function () {
  var root = document.getElementById("status");
  if (!root) return;
  function list(id, items, text, empty) {
    var ul = document.getElementById(id);
    ul.textContent = "";
    if (!items.length) { var li = document.createElement("li"); li.className = "muted"; li.textContent = empty; ul.appendChild(li); }
    items.forEach(function (item) { var li = document.createElement("li"); li.textContent = text(item); ul.appendChild(li); });
  }
  function refresh() {
    fetch(root.dataset.url, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; }).then(function (s) {
      if (!s) return;
      document.getElementById("line").textContent = s.line;
      document.getElementById("today-calls").textContent = s.today.calls;
      document.getElementById("today-answered").textContent = s.today.answered;
      list("calls", s.calls, function (c) { return c.caller + " → " + c.callee + " (" + c.state + ", " + c.seconds + " s)"; }, "none");
      list("phones", s.phones, function (p) { return p.extension + " · " + (p.user_agent || ""); }, "none yet");
      list("alerts", s.alerts, function (a) { return a; }, "all quiet");
    }).catch(function () {});
  }
  setInterval(refresh, 3000);
})();
