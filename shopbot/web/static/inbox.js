// The staff inbox, live: follows /staff/inbox/events and puts each new rendering of the
// list in place. The server sends the list's HTML (escaped by its templates) only when it
// changed; EventSource reconnects by itself when the stream ends or the network drops.
(function () {
  "use strict";
  var list = document.getElementById("inbox-list");
  var status = document.getElementById("inbox-live");
  if (!list || !window.EventSource) {
    return;
  }
  function say(text) {
    status.hidden = false;
    status.textContent = text;
  }
  var source = new EventSource(list.getAttribute("data-stream"));
  source.addEventListener("inbox", function (event) {
    var data = JSON.parse(event.data);
    // Keep the keyboard where it was: the link of the same conversation, if still listed.
    var focused = document.activeElement;
    var row = focused && list.contains(focused) ? focused.closest("tr") : null;
    var id = row ? row.getAttribute("data-conversation") : null;
    list.innerHTML = data.html;
    if (id) {
      var again = list.querySelector('tr[data-conversation="' + CSS.escape(id) + '"] a');
      if (again) {
        again.focus();
      }
    }
  });
  source.addEventListener("open", function () {
    say("Live");
  });
  source.addEventListener("error", function () {
    say(source.readyState === EventSource.CLOSED ? "Not live: reload the page" : "Reconnecting…");
  });
})();
