/* ShopBot chat widget: one script tag, no dependencies.
 *
 *   <script src="https://shopbot.example/widget.js"
 *           data-shopbot-url="https://shopbot.example"   (default: where this file came from)
 *           data-customer-token="..."                     (optional: signed by the shop's site)
 *           data-customer-token-url="/shopbot-token"      (optional: the shop's endpoint for a
 *                                                           fresh one; see "New conversation")
 *           data-title="Customer service" defer></script>
 *
 * The widget lives in a shadow root, so the shop's styles and its own never mix. Replies
 * arrive as server-sent events read with fetch (so the token travels in a header); after a
 * drop the stream resumes with Last-Event-ID and events already shown are skipped by seq.
 * The stream carries only what the customer may see (the agent's steps are for staff).
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__shopbotWidget) return;
  window.__shopbotWidget = true;

  var BASE = (script.getAttribute("data-shopbot-url") || new URL(script.src, location.href).origin)
    .replace(/\/+$/, "");
  var CUSTOMER_TOKEN = script.getAttribute("data-customer-token") || null;
  // An identity token opens one conversation (the backend accepts it once). For the next one
  // the widget asks the shop's site for a fresh token, or starts signed out.
  var TOKEN_URL = script.getAttribute("data-customer-token-url") || null;
  var TITLE = script.getAttribute("data-title") || "Customer service";
  var STORE_KEY = "shopbot:" + BASE;

  /* ---- state ---- */
  var conversation = null; // {id, token, expires}
  var lastSeq = 0;
  var streamAbort = null;
  var retryDelay = 500;
  var retryTimer = null;
  var turnRunning = false;
  var streamingBubble = null;
  var draftStep = null; // the step whose reply the streaming bubble shows
  var cards = {}; // confirmation_id -> {el, summary}
  var person = null; // "Sam from Harbor & Pine" while a person of the shop answers here
  var started = false;

  /* ---- DOM ---- */
  var host = document.createElement("div");
  host.className = "shopbot-widget-host";
  var root = host.attachShadow({ mode: "open" });
  root.innerHTML =
    '<link rel="stylesheet" href="' + BASE + '/widget.css">' +
    '<button class="launcher" type="button" aria-expanded="false" aria-controls="sb-panel">' +
    '<span class="launcher-dot" aria-hidden="true"></span><span>Chat with us</span></button>' +
    '<section class="panel" id="sb-panel" role="region" aria-labelledby="sb-title" hidden>' +
    '<header class="head"><h2 id="sb-title"></h2>' +
    '<span class="head-actions"><button class="restart" type="button">New conversation</button>' +
    '<button class="close" type="button" aria-label="Close chat">&times;</button></span></header>' +
    '<ol class="log" role="log" aria-live="off" aria-label="Conversation" tabindex="0"></ol>' +
    '<p class="status" role="status" aria-live="polite"></p>' +
    '<div class="sr-only" aria-live="polite" aria-atomic="true" data-announcer></div>' +
    '<form class="composer">' +
    '<label class="sr-only" for="sb-input">Your message</label>' +
    '<textarea id="sb-input" rows="2" placeholder="Write a message…" autocomplete="off"></textarea>' +
    '<button class="send" type="submit">Send</button>' +
    '</form>' +
    '<p class="hint">Enter sends · Shift+Enter adds a line · Esc closes</p>' +
    "</section>";

  var launcher = root.querySelector(".launcher");
  var panel = root.querySelector(".panel");
  var closeButton = root.querySelector(".close");
  var restartButton = root.querySelector(".restart");
  var log = root.querySelector(".log");
  var statusLine = root.querySelector(".status");
  var announcer = root.querySelector("[data-announcer]");
  var form = root.querySelector(".composer");
  var input = root.querySelector("textarea");
  var sendButton = root.querySelector(".send");
  root.getElementById("sb-title").textContent = TITLE;
  // Hidden until its stylesheet is in, so the shop never sees an unstyled flash.
  host.style.display = "none";
  root.querySelector("link").addEventListener("load", function () { host.style.display = ""; });
  root.querySelector("link").addEventListener("error", function () { host.style.display = ""; });

  function mount() {
    document.body.appendChild(host);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);

  /* ---- helpers ---- */
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  function announce(text) {
    announcer.textContent = "";
    // A fresh text node after a tick makes screen readers announce repeats too.
    setTimeout(function () { announcer.textContent = text; }, 30);
  }

  function setStatus(text) {
    statusLine.textContent = text || "";
    statusLine.classList.toggle("busy", !!text && turnRunning);
  }

  function setRunning(running) {
    turnRunning = running;
    sendButton.disabled = running;
    restartButton.disabled = running; // a turn under way finishes in the conversation it began
    panel.classList.toggle("running", running);
    if (!running) setStatus("");
  }

  function save() {
    try {
      if (conversation) sessionStorage.setItem(STORE_KEY, JSON.stringify(conversation));
      else sessionStorage.removeItem(STORE_KEY);
    } catch (e) { /* storage may be disabled: the conversation lasts this page */ }
  }

  function load() {
    try {
      var found = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
      if (found && found.id && found.token && Date.parse(found.expires) > Date.now() + 60000) {
        return found;
      }
    } catch (e) { /* ignore */ }
    return null;
  }

  function api(path, options) {
    options = options || {};
    var headers = { "Content-Type": "application/json" };
    if (conversation) headers.Authorization = "Bearer " + conversation.token;
    return fetch(BASE + path, {
      method: options.method || "GET",
      headers: headers,
      body: options.body ? JSON.stringify(options.body) : undefined
    }).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!response.ok) {
          var error = (data && data.error) || { code: "http_" + response.status, message: "" };
          error.status = response.status;
          error.retryAfter = Number(response.headers.get("Retry-After") || 0);
          throw error;
        }
        return data;
      });
    });
  }

  function explain(error) {
    switch (error.code) {
      case "conversation_busy": return "One moment, I'm still answering your last message.";
      case "rate_limited":
        return "You're sending messages quickly. Please try again in " +
          (error.retryAfter || 10) + " seconds.";
      case "message_too_long":
      case "payload_too_large": return error.message || "That message is too long.";
      case "no_pending_confirmation": return "That request is no longer open.";
      case "confirmation_withdrawn":
        return "You wrote after that request, so it was withdrawn and nothing was done. " +
          "Ask again if you still want it.";
      case "invalid_identity": return "Your sign-in could not be checked. Please reload the page.";
      default: return "Sorry, something went wrong. Please try again.";
    }
  }

  /* ---- rendering ---- */
  // `author`: a person of the shop ("Sam, Harbor & Pine"), shown above their words.
  function bubble(role, text, author) {
    var item = el("li", "msg " + role);
    var who = author ? el("span", "author", author) :
      el("span", "sr-only", role === "customer" ? "You said: " : "ShopBot said: ");
    var body = el("div", "text");
    body.textContent = text || "";
    item.appendChild(who);
    item.appendChild(body);
    log.appendChild(item);
    scrollDown();
    return item;
  }

  function note(text) {
    log.appendChild(el("li", "msg note", text));
    scrollDown();
    announce(text);
  }

  function addCitations(item, citations) {
    if (!citations || !citations.length) return;
    var box = el("div", "sources");
    box.appendChild(el("span", "sources-label", "Sources"));
    var list = el("ul");
    citations.forEach(function (c) {
      var entry = el("li");
      var cite = el("cite", "", c.document);
      entry.appendChild(cite);
      entry.appendChild(document.createTextNode(" — " + c.section));
      list.appendChild(entry);
    });
    box.appendChild(list);
    item.appendChild(box);
  }

  function showReply(event, animate) {
    var item = streamingBubble || bubble("assistant", "");
    streamingBubble = null;
    item.classList.remove("streaming");
    item.removeAttribute("aria-busy");
    // The recorded reply is the truth: it replaces whatever the stream showed.
    item.querySelector(".text").textContent = event.text;
    addCitations(item, event.citations);
    scrollDown();
    if (animate) announce("ShopBot: " + event.text);
  }

  // A draft is dropped when its step turned out not to be a reply (the server says
  // draft_dropped: it did not parse or was denied); the next step writes anew. Drafts can
  // arrive before the stored events of the step before them, so the step decides.
  function dropDraft(step) {
    if (!streamingBubble || (step !== undefined && step !== draftStep)) return;
    streamingBubble.remove();
    streamingBubble = null;
  }

  // The agent words every confirmation request as "Please confirm: <summary>."; the card
  // says the same with buttons, so that reply is not shown twice.
  function isConfirmationPrompt(text) {
    return Object.keys(cards).some(function (id) {
      return text === "Please confirm: " + cards[id].summary + ".";
    });
  }

  function showConfirmation(event, live) {
    var card = el("li", "msg card");
    card.setAttribute("role", "group");
    card.setAttribute("aria-label", "Confirmation needed");
    card.appendChild(el("p", "card-title", "Please confirm"));
    card.appendChild(el("p", "card-summary", event.summary));
    var actions = el("div", "card-actions");
    var yes = el("button", "confirm", "Confirm");
    var no = el("button", "cancel", "Cancel");
    yes.type = no.type = "button";
    actions.appendChild(yes);
    actions.appendChild(no);
    card.appendChild(actions);
    var expires = new Date(event.expires_at);
    if (!isNaN(expires.getTime())) {
      card.appendChild(el("p", "card-note", "Open until " +
        expires.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
    }
    log.appendChild(card);
    scrollDown();
    cards[event.confirmation_id] = { el: card, summary: event.summary };
    yes.addEventListener("click", function () { answer(event.confirmation_id, true); });
    no.addEventListener("click", function () { answer(event.confirmation_id, false); });
    if (live) announce("Please confirm: " + event.summary + ". Use the Confirm or Cancel button.");
  }

  function closeCard(id, outcome) {
    var found = cards[id];
    if (!found) return;
    var actions = found.el.querySelector(".card-actions");
    if (actions) actions.remove();
    var note = found.el.querySelector(".card-note");
    if (note) note.remove();
    found.el.classList.add("decided");
    found.el.appendChild(el("p", "card-outcome", outcome));
  }

  function closeOpenCards(except) {
    Object.keys(cards).forEach(function (id) {
      if (id !== except && cards[id].el.querySelector(".card-actions")) {
        closeCard(id, "Replaced by a newer request");
      }
    });
  }

  /* ---- events ---- */
  var lastEventAt = Date.now();

  // A turn that died on the server (a crash, not a refusal) never sends turn_ended: after
  // a quiet spell, ask whether the conversation is still busy and stop waiting if not.
  setInterval(function () {
    if (!turnRunning || !conversation || Date.now() - lastEventAt < 15000) return;
    lastEventAt = Date.now();
    api("/v1/conversations/" + conversation.id).then(function (view) {
      if (!view.busy && turnRunning) {
        setRunning(false);
        setStatus("Sorry, that took too long. Please try again.");
      }
    }).catch(function () { /* the stream's reconnect handles outages */ });
  }, 5000);

  function handle(event) {
    lastEventAt = Date.now();
    if (typeof event.seq === "number") {
      if (event.seq <= lastSeq) return; // already shown: a resumed stream may overlap
      lastSeq = event.seq;
    }
    switch (event.kind) {
      case "customer_message":
        bubble("customer", event.text);
        setRunning(true);
        if (!person) setStatus("ShopBot is typing…");
        break;
      case "staff_joined":
        person = event.name + " from " + event.shop;
        note(person + " joined the conversation");
        break;
      case "staff_message":
        bubble("staff", event.text, event.name + ", " + event.shop);
        announce(event.name + ": " + event.text);
        break;
      case "staff_left":
        person = null;
        note(event.name + " left the conversation. ShopBot is back");
        break;
      case "confirmation_decided":
        var asked = cards[event.confirmation_id];
        bubble("customer", (event.approved ? "Yes, go ahead" : "No, cancel") +
          (asked ? ": " + asked.summary : ""));
        closeCard(event.confirmation_id, event.approved ? "Confirmed" : "Cancelled");
        setRunning(true);
        setStatus("ShopBot is working on it…");
        break;
      case "working":
        setStatus(event.text); // what ShopBot is doing now, in the customer's words
        break;
      case "reply_chunk":
        if (streamingBubble && event.step !== draftStep) dropDraft();
        if (!streamingBubble) {
          draftStep = event.step;
          streamingBubble = bubble("assistant", "");
          streamingBubble.classList.add("streaming");
          streamingBubble.setAttribute("aria-busy", "true");
        }
        streamingBubble.querySelector(".text").textContent += event.text;
        scrollDown();
        break;
      case "draft_dropped":
        dropDraft(event.step);
        break;
      case "reply":
        if (isConfirmationPrompt(event.text)) dropDraft();
        else showReply(event, true);
        break;
      case "confirmation_requested":
        closeOpenCards(event.confirmation_id);
        showConfirmation(event, true);
        break;
      case "confirmation_withdrawn":
        closeCard(event.confirmation_id, "Withdrawn: you wrote instead, so nothing was done");
        break;
      case "escalated":
        note("Passed to a colleague");
        break;
      case "turn_ended":
        setRunning(false);
        break;
      default:
        break;
    }
  }

  /* ---- the stream ---- */
  function parseStream(reader, onEvent) {
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return;
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
        var cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          var block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          var data = [];
          block.split("\n").forEach(function (line) {
            if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
          });
          if (data.length) {
            try { onEvent(JSON.parse(data.join("\n"))); } catch (e) { /* skip a bad event */ }
          }
        }
        return pump();
      });
    }
    return pump();
  }

  function connect() {
    if (!conversation) return;
    if (streamAbort) streamAbort.abort();
    clearTimeout(retryTimer);
    var abort = new AbortController();
    streamAbort = abort;
    fetch(BASE + "/v1/conversations/" + conversation.id + "/events", {
      headers: {
        Authorization: "Bearer " + conversation.token,
        "Last-Event-ID": String(lastSeq),
        Accept: "text/event-stream"
      },
      signal: abort.signal,
      cache: "no-store"
    }).then(function (response) {
      if (response.status === 401) {
        forget();
        return;
      }
      if (!response.ok || !response.body) throw new Error("stream " + response.status);
      retryDelay = 500;
      panel.classList.remove("offline");
      return parseStream(response.body.getReader(), handle).then(reconnectSoon);
    }).catch(function () {
      if (abort.signal.aborted) return;
      panel.classList.add("offline");
      if (turnRunning) setStatus("Reconnecting…");
      reconnectSoon();
    });
  }

  function reconnectSoon() {
    if (!conversation) return;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
  }

  function forget() {
    if (streamAbort) streamAbort.abort();
    conversation = null;
    lastSeq = 0;
    save();
    setRunning(false);
  }

  function greet() {
    bubble("assistant", "Hi! I can help with your orders, returns and our policies. " +
      "What can I do for you?").classList.add("greeting");
  }

  function restart() {
    if (turnRunning) return;
    forget();
    cards = {};
    dropDraft();
    log.textContent = "";
    greet();
    setStatus("");
    announce("New conversation. Write a message to start.");
    input.focus();
  }

  /* ---- conversation ---- */
  function identity() {
    if (CUSTOMER_TOKEN) {
      var token = CUSTOMER_TOKEN;
      CUSTOMER_TOKEN = null; // used once
      return Promise.resolve(token);
    }
    if (!TOKEN_URL) return Promise.resolve(null);
    return fetch(TOKEN_URL, { credentials: "same-origin" }).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (text) {
      return text ? text.trim() : null;
    }).catch(function () { return null; });
  }

  function ensureConversation() {
    if (conversation) return Promise.resolve(conversation);
    return identity().then(function (token) {
      var body = token ? { customer_token: token } : {};
      return api("/v1/conversations", { method: "POST", body: body });
    }).then(function (created) {
      conversation = {
        id: created.conversation_id,
        token: created.token,
        expires: created.token_expires_at
      };
      lastSeq = 0;
      save();
      connect();
      return conversation;
    });
  }

  function restore() {
    var stored = load();
    if (!stored) return Promise.resolve();
    conversation = stored;
    return api("/v1/conversations/" + stored.id).then(function (view) {
      var pending = view.pending_confirmation;
      var prompt = pending && "Please confirm: " + pending.summary + ".";
      view.messages.forEach(function (m, i) {
        var last = i === view.messages.length - 1;
        if (last && m.role === "assistant" && m.text === prompt) return;
        var item = bubble(m.role, m.text, m.role === "staff" ? m.name + ", " + m.shop : null);
        addCitations(item, m.citations);
      });
      if (pending) showConfirmation(pending, false);
      person = view.person || null;
      if (person) note(person + " is in the conversation");
      lastSeq = view.last_seq;
      if (view.busy) { setRunning(true); setStatus("ShopBot is typing…"); }
      connect();
    }).catch(function () { forget(); });
  }

  function send(text) {
    setStatus("");
    sendButton.disabled = true;
    return ensureConversation().then(function () {
      return api("/v1/conversations/" + conversation.id + "/messages", {
        method: "POST",
        body: { text: text }
      });
    }).then(function () {
      input.value = "";
    }).catch(function (error) {
      if (error.code === "invalid_token") forget();
      sendButton.disabled = turnRunning;
      setStatus(explain(error));
      announce(explain(error));
    });
  }

  function answer(id, approve) {
    var found = cards[id];
    if (found) {
      found.el.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    }
    api("/v1/conversations/" + conversation.id + "/confirmations/" + encodeURIComponent(id), {
      method: "POST",
      body: { approve: approve }
    }).catch(function (error) {
      if (error.code === "confirmation_withdrawn") closeCard(id, "Withdrawn");
      else if (error.code === "no_pending_confirmation") closeCard(id, "No longer open");
      else if (found) found.el.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      setStatus(explain(error));
      announce(explain(error));
    });
  }

  /* ---- open, close, keyboard ---- */
  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.classList.add("open");
    input.focus();
    if (!started) {
      started = true;
      greet();
      restore();
    }
  }

  function close() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.classList.remove("open");
    launcher.focus();
  }

  launcher.addEventListener("click", function () {
    if (panel.hidden) open();
    else close();
  });
  closeButton.addEventListener("click", close);
  restartButton.addEventListener("click", restart);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (typeof form.requestSubmit === "function") form.requestSubmit();
      else form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || turnRunning) return;
    send(text);
  });

  window.ShopBot = { open: open, close: close };
})();
