/*
 * Literature assistant widget (liver metastases of GEP neuroendocrine tumours).
 * One self-contained file: no build step, no CDN, no dependencies.
 *
 * Embed with one tag:
 *   <script src="https://host/widget.js" data-endpoint="https://host" defer></script>
 * Optional attributes:
 *   data-target="#element-id"  render the panel inside that element instead of a floating button
 *   data-title="..."           panel title
 *   data-open="true"           floating panel starts open
 *   data-api-key="..."         sent as X-API-Key (anyone who can read the page can read it too)
 *
 * Everything that comes from the server is inserted as text (textContent, attributes set one by
 * one), never parsed as HTML; links are built only from http(s) URLs, digit-only PMIDs and DOIs.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script) return;

  var MAX_HISTORY = 12; // turns sent back for follow-ups (6 questions and their answers)
  var TIMEOUT_MS = 30000;

  function attr(name, fallback) {
    var v = script.getAttribute(name);
    return v === null || v === "" ? fallback : v;
  }

  function resolveEndpoint() {
    var raw = attr("data-endpoint", "");
    try {
      var base = raw ? new URL(raw, document.baseURI) : new URL(script.src, document.baseURI);
      if (base.protocol !== "http:" && base.protocol !== "https:") return null;
      return raw ? base.href.replace(/\/+$/, "") : base.origin;
    } catch (e) {
      return null;
    }
  }

  var endpoint = resolveEndpoint();
  var apiKey = attr("data-api-key", "");
  var title = attr("data-title", "Ask the NET liver literature");
  var targetSel = attr("data-target", "");
  var uid = "nla" + Math.random().toString(36).slice(2, 8);

  var CSS = [
    ":host{all:initial}",
    "*{box-sizing:border-box}",
    ".root{font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;color:#1b1f23}",
    ".launcher{position:fixed;right:16px;bottom:16px;z-index:2147483000;border:0;border-radius:24px;",
    "padding:12px 18px;background:#0b5cad;color:#fff;font:inherit;font-weight:600;cursor:pointer;",
    "box-shadow:0 2px 10px rgba(0,0,0,.25)}",
    ".launcher:hover{background:#094a8c}",
    ".panel{display:flex;flex-direction:column;background:#fff;border:1px solid #c9d1d9;",
    "border-radius:10px;overflow:hidden}",
    ".floating .panel{position:fixed;right:16px;bottom:76px;z-index:2147483000;",
    "width:min(440px,calc(100vw - 32px));height:min(640px,calc(100vh - 100px));",
    "box-shadow:0 6px 28px rgba(0,0,0,.28)}",
    ".inline .panel{width:100%;min-height:420px;max-height:80vh}",
    ".panel[hidden]{display:none}",
    "header{display:flex;align-items:center;gap:8px;padding:10px 12px;background:#0b5cad;color:#fff}",
    "header h2{flex:1;margin:0;font-size:1rem;font-weight:600}",
    "header button{border:1px solid rgba(255,255,255,.6);background:transparent;color:#fff;",
    "border-radius:6px;padding:4px 8px;font:inherit;font-size:.85rem;cursor:pointer}",
    ".note{margin:0;padding:6px 12px;font-size:.8rem;color:#57606a;background:#f6f8fa;",
    "border-bottom:1px solid #d8dee4}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:12px}",
    ".empty{color:#57606a;font-size:.9rem;margin:0}",
    ".q{align-self:flex-end;max-width:85%;background:#e7f0fa;border-radius:10px 10px 2px 10px;",
    "padding:8px 10px;white-space:pre-wrap;overflow-wrap:anywhere}",
    ".a{border-left:3px solid #0b5cad;padding:2px 0 2px 10px;overflow-wrap:anywhere}",
    ".a p{margin:0 0 8px}",
    ".status{color:#57606a;font-style:italic}",
    ".abstain{background:#fff8e1;border:1px solid #e3b341;border-radius:6px;padding:8px 10px;margin:0 0 8px}",
    ".error{background:#ffebe9;border:1px solid #cf222e;border-radius:6px;padding:8px 10px;margin:0}",
    ".query{font-size:.8rem;color:#57606a;margin:0 0 6px}",
    ".marker{font-size:.8em;vertical-align:super;margin-left:1px;color:#0b5cad;text-decoration:none;",
    "font-weight:600}",
    ".marker:hover{text-decoration:underline}",
    "h3{font-size:.85rem;margin:8px 0 4px;color:#424a53;text-transform:uppercase;letter-spacing:.03em}",
    "ol.sources{margin:0;padding:0;list-style:none;display:flex;flex-direction:column;gap:6px}",
    "ol.sources li{font-size:.88rem;border:1px solid #d8dee4;border-radius:6px;padding:6px 8px}",
    "ol.sources li.hl{outline:2px solid #0b5cad;background:#f0f6fc}",
    ".n{font-weight:700;margin-right:4px}",
    ".meta{color:#57606a}",
    ".badge{display:inline-block;font-size:.75rem;border:1px solid #8c959f;border-radius:10px;",
    "padding:0 6px;margin-left:4px;color:#424a53}",
    ".badge.new{border-color:#1a7f37;color:#1a7f37;font-weight:600}",
    ".links a{margin-right:10px;color:#0b5cad}",
    ".footer{margin:0;padding:4px 12px;font-size:.75rem;color:#57606a;background:#f6f8fa;",
    "border-top:1px solid #d8dee4;overflow-wrap:anywhere}",
    ".footer[hidden]{display:none}",
    "details{margin-top:4px}",
    "summary{cursor:pointer;color:#424a53;font-size:.82rem}",
    "blockquote{margin:4px 0 0;padding-left:8px;border-left:2px solid #d8dee4;white-space:pre-wrap;",
    "font-size:.85rem;color:#32383f}",
    "form{display:flex;gap:8px;padding:10px 12px;border-top:1px solid #d8dee4;background:#fff}",
    "textarea{flex:1;resize:none;min-height:44px;max-height:140px;font:inherit;padding:8px;",
    "border:1px solid #8c959f;border-radius:6px}",
    "form button{border:0;border-radius:6px;background:#0b5cad;color:#fff;font:inherit;",
    "font-weight:600;padding:0 16px;cursor:pointer;min-width:64px}",
    "form button[disabled]{background:#8c959f;cursor:progress}",
    ":focus-visible{outline:3px solid #e3b341;outline-offset:2px}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    "@media (max-width:480px){.floating .panel{right:0;bottom:0;width:100vw;height:100vh;",
    "border-radius:0}.floating.open .launcher{display:none}.q{max-width:95%}}"
  ].join("");

  // ---------------------------------------------------------------- DOM helpers (text only)
  function el(tag, props, children) {
    var node = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (k) {
        var v = props[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "text") node.textContent = String(v);
        else if (k === "className") node.className = v;
        else if (k === "on") Object.keys(v).forEach(function (ev) { node.addEventListener(ev, v[ev]); });
        else node.setAttribute(k, String(v));
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function safeHttpUrl(value) {
    if (typeof value !== "string" || !value) return null;
    try {
      var u = new URL(value);
      return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  function pubmedUrl(pmid) {
    return typeof pmid === "string" && /^\d{1,10}$/.test(pmid)
      ? "https://pubmed.ncbi.nlm.nih.gov/" + pmid + "/"
      : null;
  }

  function doiUrl(doi) {
    if (typeof doi !== "string" || !/^10\.\S+$/.test(doi)) return null;
    return "https://doi.org/" + doi.split("/").map(encodeURIComponent).join("/");
  }

  function firstAuthor(authors) {
    if (!Array.isArray(authors) || !authors.length) return "";
    var first = String(authors[0]).replace(/ et al\.?$/, "");
    return authors.length > 1 ? first + " et al." : first;
  }

  function link(href, text, label) {
    return el("a", { href: href, target: "_blank", rel: "noopener noreferrer", "aria-label": label, text: text });
  }

  // ---------------------------------------------------------------- build the widget
  var host = el("div", { "data-widget": "net-liver-assistant" });
  var shadow = host.attachShadow({ mode: "open" });
  shadow.appendChild(el("style", { text: CSS }));

  var target = null;
  if (targetSel) {
    try {
      target = document.querySelector(targetSel);
    } catch (e) {
      target = null;
    }
  }
  var floating = !target;
  var root = el("div", { className: "root " + (floating ? "floating" : "inline") });
  shadow.appendChild(root);

  var launcher = null;
  if (floating) {
    launcher = el("button", {
      type: "button", className: "launcher", "aria-expanded": "false",
      "aria-controls": uid + "-panel", text: "Ask the literature"
    });
    root.appendChild(launcher);
  }

  var log = el("div", { className: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" }, [
    el("p", { className: "empty", text: "Ask about the literature on liver metastases of gastro-entero-pancreatic neuroendocrine tumours. Answers quote published sources with [n] citations." })
  ]);
  var input = el("textarea", {
    id: uid + "-q", name: "question", rows: "2", maxlength: "2000", autocomplete: "off",
    placeholder: "Ask a question… (Enter to send, Shift+Enter for a new line)"
  });
  var submit = el("button", { type: "submit", text: "Ask" });
  var form = el("form", { "aria-label": "Ask a question" }, [
    el("label", { className: "sr", "for": uid + "-q", text: "Your question" }), input, submit
  ]);
  // The corpus snapshot the answers come from; filled in from the first answer's "corpus".
  var footer = el("p", { className: "footer", hidden: "hidden", "aria-live": "off" });
  var resetBtn = el("button", { type: "button", text: "New conversation", title: "Forget earlier questions" });
  var closeBtn = floating ? el("button", { type: "button", "aria-label": "Close", text: "✕" }) : null;
  var panel = el("section", {
    id: uid + "-panel", className: "panel", "aria-label": title, hidden: floating ? "hidden" : null
  }, [
    el("header", null, [el("h2", { text: title }), resetBtn, closeBtn]),
    el("p", { className: "note", text: "Cites published literature; it does not replace clinical judgement. Do not type patient identifiers." }),
    log,
    form,
    footer
  ]);
  root.appendChild(panel);
  (target || document.body).appendChild(host);

  function setOpen(open) {
    if (!floating) return;
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    root.classList.toggle("open", open);
    if (open) input.focus();
    else launcher.focus();
  }

  if (floating) {
    launcher.addEventListener("click", function () { setOpen(panel.hidden); });
    closeBtn.addEventListener("click", function () { setOpen(false); });
    panel.addEventListener("keydown", function (e) {
      if (e.key === "Escape") { e.preventDefault(); setOpen(false); }
    });
    if (attr("data-open", "") === "true") setOpen(true);
  }

  // ---------------------------------------------------------------- conversation
  var history = [];
  var turn = 0;
  var busy = false;

  resetBtn.addEventListener("click", function () {
    history = [];
    while (log.firstChild) log.removeChild(log.firstChild);
    log.appendChild(el("p", { className: "empty", text: "New conversation: earlier questions are forgotten." }));
    input.focus();
  });

  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit ? form.requestSubmit() : submitQuestion();
    }
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    submitQuestion();
  });

  function scrollToEnd() { log.scrollTop = log.scrollHeight; }

  function submitQuestion() {
    var question = input.value.trim();
    if (busy || !question) return;
    busy = true;
    submit.disabled = true;
    log.setAttribute("aria-busy", "true");
    var empty = log.querySelector(".empty");
    if (empty) log.removeChild(empty);
    turn += 1;
    log.appendChild(el("div", { className: "q", text: question }));
    var block = el("div", { className: "a", "data-turn": String(turn) }, [
      el("p", { className: "status", text: "Searching the literature…" })
    ]);
    log.appendChild(block);
    scrollToEnd();
    var thisTurn = turn;
    ask(question)
      .then(function (data) {
        renderAnswer(block, data, thisTurn);
        history.push({ role: "user", content: question });
        history.push({ role: "assistant", content: String(data.answer || data.message || "") });
        if (history.length > MAX_HISTORY) history = history.slice(history.length - MAX_HISTORY);
        input.value = "";
      })
      .catch(function (err) {
        clear(block);
        block.appendChild(el("p", { className: "error", role: "alert", text: err.message }));
      })
      .then(function () {
        busy = false;
        submit.disabled = false;
        log.removeAttribute("aria-busy");
        scrollToEnd();
        input.focus();
      });
  }

  function ask(question) {
    if (!endpoint) return Promise.reject(new Error("The widget has no valid data-endpoint."));
    var headers = { "Content-Type": "application/json" };
    if (apiKey) headers["X-API-Key"] = apiKey;
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, TIMEOUT_MS) : null;
    return fetch(endpoint + "/v1/ask", {
      method: "POST",
      headers: headers,
      body: JSON.stringify({ question: question, history: history }),
      credentials: "omit",
      signal: controller ? controller.signal : undefined
    })
      .then(function (res) {
        return res.json().catch(function () { return null; }).then(function (body) {
          if (!res.ok) {
            var msg = body && typeof body.message === "string" ? body.message : "The server answered " + res.status + ".";
            if (body && typeof body.hint === "string" && body.hint) msg += " (" + body.hint + ")";
            throw new Error(msg);
          }
          if (!body || typeof body !== "object") throw new Error("The server sent an unreadable answer.");
          return body;
        });
      }, function (err) {
        throw new Error(err && err.name === "AbortError"
          ? "The server took too long to answer. Try again."
          : "The assistant cannot be reached. Check the connection and try again.");
      })
      .finally(function () { if (timer) clearTimeout(timer); });
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function sourceId(t, rank) { return uid + "-t" + t + "-s" + rank; }

  function jumpTo(id) {
    var item = shadow.getElementById(id);
    if (!item) return;
    shadow.querySelectorAll("li.hl").forEach(function (n) { n.classList.remove("hl"); });
    item.classList.add("hl");
    item.scrollIntoView({ block: "nearest" });
    item.focus();
  }

  // The answer text with every [n] turned into a link to source n of this turn.
  function answerParagraph(text, t, ranks, titles) {
    var p = el("p", { className: "answer" });
    var re = /\[(\d{1,3})\]/g;
    var last = 0;
    var m;
    while ((m = re.exec(text)) !== null) {
      p.appendChild(document.createTextNode(text.slice(last, m.index)));
      var rank = m[1];
      if (ranks[rank]) {
        var id = sourceId(t, rank);
        p.appendChild(el("a", {
          className: "marker", href: "#" + id, "data-rank": rank,
          "aria-label": "source " + rank + (titles[rank] ? ": " + titles[rank] : ""),
          text: "[" + rank + "]",
          on: { click: (function (target) { return function (e) { e.preventDefault(); jumpTo(target); }; })(id) }
        }));
      } else {
        p.appendChild(document.createTextNode(m[0]));
      }
      last = re.lastIndex;
    }
    p.appendChild(document.createTextNode(text.slice(last)));
    return p;
  }

  function sourceItem(passage, t, data) {
    var s = passage.source && typeof passage.source === "object" ? passage.source : {};
    var rank = String(passage.rank);
    var bits = [];
    var author = firstAuthor(s.authors);
    if (author) bits.push(author);
    if (s.journal) bits.push(String(s.journal));
    if (s.year) bits.push(String(s.year));
    var reviewYear = typeof data.corpus === "object" && data.corpus && /^\d{4}$/.test(String(data.corpus.review_year))
      ? String(data.corpus.review_year) : "";
    var newer = s.after_review === true
      ? el("span", {
        className: "badge new",
        title: "Published after the " + (reviewYear ? reviewYear + " " : "") + "review this corpus is built around",
        text: reviewYear ? "after " + reviewYear : "after the review"
      })
      : null;
    var links = el("span", { className: "links" });
    var pm = pubmedUrl(s.pmid);
    var doi = doiUrl(s.doi);
    var url = safeHttpUrl(s.url);
    if (pm) links.appendChild(link(pm, "PubMed " + s.pmid, "PubMed record " + s.pmid));
    if (doi) links.appendChild(link(doi, "DOI", "DOI " + s.doi));
    if (url && !pm && !doi) links.appendChild(link(url, "Link", "Source web page"));
    var item = el("li", { id: sourceId(t, rank), tabindex: "-1", "data-rank": rank }, [
      el("span", { className: "n", text: "[" + rank + "]" }),
      el("span", { className: "title", text: String(s.title || s.id || "Untitled source") }),
      el("div", { className: "meta" }, [
        bits.join(" · "),
        s.source_type ? el("span", { className: "badge", text: String(s.source_type) }) : null,
        newer,
        passage.page !== undefined && passage.page !== null ? el("span", { className: "badge page", text: "p. " + passage.page }) : null
      ]),
      links.childNodes.length ? links : null,
      el("details", null, [
        el("summary", { text: "Passage" + (passage.section ? " — " + passage.section : "") }),
        el("blockquote", { text: String(passage.text || "") })
      ])
    ]);
    return item;
  }

  function showCorpus(corpus) {
    if (!corpus || typeof corpus !== "object") return;
    var parts = [];
    var fp = typeof corpus.fingerprint === "string" ? corpus.fingerprint.slice(0, 12) : "";
    parts.push("Corpus snapshot" + (fp ? " " + fp : ""));
    if (typeof corpus.n_sources === "number") parts.push(corpus.n_sources + " sources");
    if (typeof corpus.newest_source_year === "number") parts.push("newest source " + corpus.newest_source_year);
    footer.textContent = parts.join(" · ");
    footer.hidden = false;
  }

  function renderAnswer(block, data, t) {
    clear(block);
    showCorpus(data.corpus);
    var passages = Array.isArray(data.passages) ? data.passages : [];
    var ranks = {};
    var titles = {};
    passages.forEach(function (p) {
      ranks[String(p.rank)] = true;
      titles[String(p.rank)] = p.source && p.source.title ? String(p.source.title) : "";
    });
    if (typeof data.query === "string" && typeof data.question === "string" && data.query !== data.question) {
      block.appendChild(el("p", { className: "query", text: "Searched for: " + data.query }));
    }
    if (data.abstained || !data.answer) {
      block.appendChild(el("p", {
        className: "abstain", role: "note",
        text: String(data.message || "The indexed literature does not appear to address this question, so no answer is given.")
      }));
    } else {
      block.appendChild(answerParagraph(String(data.answer), t, ranks, titles));
    }
    if (passages.length) {
      block.appendChild(el("h3", { text: data.abstained ? "Closest passages found" : "Sources" }));
      var list = el("ol", { className: "sources" });
      passages.forEach(function (p) { list.appendChild(sourceItem(p, t, data)); });
      block.appendChild(list);
    }
    var refs = Array.isArray(data.references) ? data.references : [];
    if (refs.length) block.appendChild(referencesBlock(refs));
  }

  // Sources the passages cite by label ("Le Treut 2013"): an expandable list, text only.
  function referencesBlock(refs) {
    var list = el("ul", { className: "refs" });
    refs.forEach(function (r) {
      if (!r || typeof r !== "object") return;
      var bits = [];
      var author = firstAuthor(r.authors);
      if (author) bits.push(author);
      if (r.journal) bits.push(String(r.journal));
      if (r.year) bits.push(String(r.year));
      var links = el("span", { className: "links" });
      var pm = pubmedUrl(r.pmid);
      var doi = doiUrl(r.doi);
      if (pm) links.appendChild(link(pm, "PubMed " + r.pmid, "PubMed record " + r.pmid));
      if (doi) links.appendChild(link(doi, "DOI", "DOI " + r.doi));
      list.appendChild(el("li", null, [
        el("span", { className: "n", text: String(r.label || r.id || "") }),
        el("span", { className: "title", text: String(r.title || r.id || "") }),
        el("div", { className: "meta" }, [bits.join(" · ")]),
        links.childNodes.length ? links : null
      ]));
    });
    return el("details", { className: "references" }, [
      el("summary", { text: "Cited in these passages (" + list.childNodes.length + ")" }),
      list
    ]);
  }
})();
