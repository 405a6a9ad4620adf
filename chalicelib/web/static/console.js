// ShopHook console: an action shows "queued" at once and its final state
// without a reload. Each unfinished action's status is polled until it is done.
(function () {
  "use strict";
  var FINAL = ["sent", "failed", "dead_lettered"];
  var labels = JSON.parse(document.body.getAttribute("data-state-labels") || "{}");
  var MAX_POLLS = 180;

  function show(element, body) {
    element.setAttribute("data-state", body.state);
    element.className = "status status-" + body.state;
    element.textContent = (labels[body.state] || body.state) + (body.error ? ": " + body.error : "");
  }

  function poll(element, count) {
    fetch(element.getAttribute("data-url"), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (body) {
        if (!body) { return; }
        if (body.state !== element.getAttribute("data-state")) { show(element, body); }
        if (FINAL.indexOf(body.state) < 0 && count < MAX_POLLS) {
          setTimeout(function () { poll(element, count + 1); }, 1000);
        }
      })
      .catch(function () {
        if (count < MAX_POLLS) { setTimeout(function () { poll(element, count + 1); }, 3000); }
      });
  }

  document.querySelectorAll('[data-test="action-status"]').forEach(function (element) {
    if (FINAL.indexOf(element.getAttribute("data-state")) < 0) { poll(element, 0); }
  });
})();
