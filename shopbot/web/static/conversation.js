/* The staff conversation page, live: follows the conversation's staff stream (server-sent
   events, the session's cookie) and adds what happens after the page was rendered: the
   messages, and a line per step. Served as a file: the page's CSP allows no inline code. */
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  var id = live.getAttribute("data-conversation");
  var lastSeq = parseInt(live.getAttribute("data-last-seq"), 10) || 0;
  var messages = document.getElementById("messages");
  var steps = document.getElementById("live-steps");
  var status = document.getElementById("stream-status");

  function add(list, className, who, text) {
    var item = document.createElement("li");
    item.className = className;
    var name = document.createElement("span");
    name.className = "who";
    name.textContent = who;
    var body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    item.appendChild(name);
    item.appendChild(body);
    list.appendChild(item);
  }

  function json(value) {
    return JSON.stringify(value);
  }

  // Each kind: where it goes and how it reads. Anything else is left to a reload.
  var shown = {
    customer_message: function (e) { add(messages, "line customer", "Customer", e.text); },
    reply: function (e) { add(messages, "line assistant", "ShopBot", e.text); },
    staff_message: function (e) { add(messages, "line staff", e.name + ", " + e.shop, e.text); },
    staff_joined: function (e) { add(messages, "line note", "—", e.name + " took the conversation over."); },
    staff_left: function (e) { add(messages, "line note", "—", e.name + " handed the conversation back to ShopBot."); },
    escalated: function (e) { add(messages, "line note", "—", "Escalated: " + e.reason); },
    staff_tool: function (e) {
      add(messages, "line note", "—", e.name + " ran " + e.tool + " (" +
        (e.decision === "override" ? "overriding a rule" : "allowed") + "): " +
        (e.error ? "failed" : "done") + ". " + e.reason);
    },
    action: function (e) { add(steps, "step", "Step " + e.step, e.tool + " " + json(e.args)); },
    parse_failed: function (e) { add(steps, "step", "Step " + e.step, "did not parse: " + e.error); },
    verdict: function (e) { add(steps, "step", "Guard", e.decision + ": " + e.reason); },
    observation: function (e) {
      add(steps, "step", "Observation", json(e.data) + " (" + Math.round(e.ms) + " ms)");
    },
    turn_ended: function (e) {
      add(steps, "step", "Turn " + e.turn, "ended after " + e.steps + " steps, " +
        Math.round(e.ms) + " ms (reload for the full audit rows)");
    }
  };

  var source = new EventSource("/v1/staff/conversations/" + encodeURIComponent(id) +
    "/events?after=" + lastSeq);
  Object.keys(shown).forEach(function (kind) {
    source.addEventListener(kind, function (message) {
      var event = JSON.parse(message.data);
      if (typeof event.seq === "number") {
        if (event.seq <= lastSeq) return;
        lastSeq = event.seq;
      }
      shown[kind](event);
    });
  });
  source.addEventListener("open", function () { status.textContent = "Live"; });
  source.addEventListener("error", function () { status.textContent = "Reconnecting…"; });
})();
