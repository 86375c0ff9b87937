/* The review page: the table is drawn here from the JSON the server put in the page; every act
   is one POST; text from the store only ever goes into the page as textContent. */
(function () {
  "use strict";

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "–";
    var a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
  }

  function readJSON(id) { return JSON.parse(document.getElementById(id).textContent); }

  function post(url, body) {
    return fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
                        credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (j) { return { status: r.status, body: j }; }); });
  }

  // -- the index: search across speakers ------------------------------------------------------
  function index() {
    var names = readJSON("names"), form = document.getElementById("search");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var q = document.getElementById("q").value, status = document.getElementById("search-status");
      fetch("/api/search?q=" + encodeURIComponent(q), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (j) {
          var table = document.getElementById("results"), body = table.querySelector("tbody");
          body.textContent = "";
          if (j.error) { status.textContent = j.error; table.hidden = true; return; }
          status.textContent = j.clips.length + " clip" + (j.clips.length === 1 ? "" : "s") + " found";
          j.clips.forEach(function (c) {
            var tr = el("tr"), a = el("a", null, c.speaker);
            a.href = "/speakers/" + encodeURIComponent(c.speaker) + "#" + encodeURIComponent(c.clip_id);
            var td = el("td"); td.appendChild(a); tr.appendChild(td);
            tr.appendChild(el("td", null, c.clip_id));
            var st = el("td"); st.appendChild(el("span", "status " + (c.status || ""), c.status || "undecided")); tr.appendChild(st);
            tr.appendChild(el("td", null, c.reasons.map(function (r) { return names[r] || r; }).join("; ")));
            tr.appendChild(el("td", null, c.text));
            tr.appendChild(el("td", null, c.text_source || ""));
            body.appendChild(tr);
          });
          table.hidden = !j.clips.length;
        });
    });
  }

  // -- a speaker's page -----------------------------------------------------------------------
  function speaker() {
    var data = readJSON("data"), page = data.page, names = data.names;
    var rows = page.clips, byId = {}, shown = [], cur = -1, busy = false;
    var sort = { key: null, dir: 1 }, waves = {};
    var $ = function (id) { return document.getElementById(id); };
    rows.forEach(function (r) { byId[r.clip_id] = r; });

    var columns = [
      { key: "clip_id", title: "clip", cls: "id", get: function (r) { return r.clip_id; } },
      { key: "status", title: "status", cls: "st", get: function (r) { return r.status || ""; } },
      { key: "decided_by", title: "by", get: function (r) { return r.decided_by || "rules"; } },
      { key: "reasons", title: "reasons (first cause first)", get: function (r) { return r.reasons.join(","); } },
      { key: "text", title: "text", cls: "text", get: function (r) { return r.text; } },
      { key: "text_source", title: "text from", get: function (r) { return r.text_source || ""; } }
    ].concat(data.metrics.map(function (m) {
      return { key: m.key, title: m.title, cls: "num", metric: true, get: function (r) { return r.metrics[m.key]; } };
    }));

    function reviewed(r) { return r.decided_by !== null || r.text_source === "reviewed"; }
    var tests = {
      "": function () { return true; },
      accepted: function (r) { return r.status === "accepted"; },
      rejected: function (r) { return r.status === "rejected"; },
      unreviewed: function (r) { return !reviewed(r); },
      reviewed: reviewed,
      overruled: function (r) { return r.decided_by !== null && r.status !== r.machine_status; },
      conflict: function (r) { return !!r.conflict; },
      flagged: function (r) { return r.flags.length > 0; },
      lowconf: function (r) { var c = r.metrics.asr_conf; return c !== null && c !== undefined && c < page.low_confidence; }
    };

    // header and reason filter
    columns.forEach(function (c) {
      var th = el("th", null, c.title);
      th.dataset.key = c.key;
      th.addEventListener("click", function () { sortBy(c.key); });
      $("head").appendChild(th);
    });
    var present = {};   // every reason a person may give, and any older one the rules gave
    data.reasons.forEach(function (x) { present[x] = true; });
    rows.forEach(function (r) { r.reasons.concat(r.machine_reasons).forEach(function (x) { present[x] = true; }); });
    Object.keys(present).sort().forEach(function (x) {
      var o = el("option", null, names[x] || x); o.value = x; $("f-reason").appendChild(o);
    });

    function rowEl(r) {
      var tr = el("tr");
      tr.dataset.id = r.clip_id;
      if (r.decided_by) tr.classList.add("by-person");
      if (r.reference) tr.classList.add("ref");
      columns.forEach(function (c) {
        var td = el("td", c.cls || null);
        if (c.key === "status") {
          td.appendChild(el("span", "status " + (r.status || ""), r.status || "undecided"));
          if (r.conflict) td.appendChild(el("span", "conflict", " ⚠"));
        } else if (c.key === "reasons") {
          td.textContent = r.reasons.map(function (x) { return names[x] || x; }).join("; ");
          if (r.flags.length) td.appendChild(el("div", "quiet", "flags: " + r.flags.map(function (x) { return names[x] || x; }).join("; ")));
        } else if (c.key === "text_source") {
          td.appendChild(el("span", "badge " + (r.text_source || ""), r.text_source || "none"));
        } else if (c.metric) {
          td.textContent = fmt(c.get(r));
        } else {
          td.textContent = c.get(r);
        }
        tr.appendChild(td);
      });
      tr.addEventListener("click", function () { select(shown.indexOf(r.clip_id), false); });
      return tr;
    }

    var trs = {};   // each row's element, made once and kept (filtering and sorting only move them)
    function trOf(id) { return trs[id] || (trs[id] = rowEl(byId[id])); }

    function draw() {
      var body = $("rows"), frag = document.createDocumentFragment();
      body.textContent = "";
      shown.forEach(function (id) { frag.appendChild(trOf(id)); });
      body.appendChild(frag);
      $("count").textContent = shown.length + " of " + rows.length + " clips";
      markCurrent();
    }

    function applyFilter(keepId) {
      var t0 = performance.now();
      var test = tests[$("f-status").value], reason = $("f-reason").value, q = $("f-q").value.trim().toLowerCase();
      var list = rows.filter(function (r) {
        return test(r) && (!reason || r.reasons.indexOf(reason) >= 0 || r.machine_reasons.indexOf(reason) >= 0) &&
          (!q || r.text.toLowerCase().indexOf(q) >= 0 || r.clip_id.toLowerCase().indexOf(q) >= 0 ||
           r.asr_text.toLowerCase().indexOf(q) >= 0);
      });
      if (sort.key) {
        var col = columns.filter(function (c) { return c.key === sort.key; })[0];
        list.sort(function (a, b) {
          var x = col.get(a), y = col.get(b);
          if (x === null || x === undefined) return 1;
          if (y === null || y === undefined) return -1;
          return (x < y ? -1 : x > y ? 1 : 0) * sort.dir;
        });
      }
      shown = list.map(function (r) { return r.clip_id; });
      draw();
      var at = shown.indexOf(keepId);
      select(at >= 0 ? at : (shown.length ? 0 : -1), false);
      window.__lastFilterMs = performance.now() - t0;
    }

    function sortBy(key) {
      sort.dir = sort.key === key ? -sort.dir : 1;
      sort.key = key;
      document.querySelectorAll("#head th").forEach(function (th) {
        th.classList.toggle("sorted-asc", th.dataset.key === key && sort.dir === 1);
        th.classList.toggle("sorted-desc", th.dataset.key === key && sort.dir === -1);
      });
      applyFilter(current() && current().clip_id);
    }

    function current() { return cur >= 0 ? byId[shown[cur]] : null; }

    function markCurrent() {
      document.querySelectorAll("#rows tr.current").forEach(function (tr) { tr.classList.remove("current"); });
      var r = current();
      if (!r) return;
      var tr = trs[r.clip_id];
      if (tr && tr.parentNode) { tr.classList.add("current"); tr.scrollIntoView({ block: "nearest" }); }
    }

    function select(i, play) {
      closeTools();
      cur = i;
      markCurrent();
      var r = current();
      if (!r) { $("d-id").textContent = "no clip"; return; }
      if (history.replaceState) history.replaceState(null, "", "#" + encodeURIComponent(r.clip_id));
      showDetail(r);
      var audio = $("audio");
      audio.src = "/audio/" + encodeURIComponent(r.clip_id);
      if (play) audio.play().catch(function () {});
      loadWave(r);
    }

    function showDetail(r) {
      $("d-id").textContent = r.clip_id + (r.reference ? "  ★ reference" : "");
      $("d-where").textContent = r.source + "  " + r.start_s.toFixed(2) + "–" + r.end_s.toFixed(2) + " s";
      var v = $("d-verdict");
      v.textContent = "";
      v.appendChild(el("span", "status " + (r.status || ""), r.status || "undecided"));
      var why = r.reasons.map(function (x) { return names[x] || x; }).join("; ");
      v.appendChild(el("span", null, (why ? " " + why : "") + (r.note ? " — “" + r.note + "”" : "")));
      v.appendChild(el("span", "quiet", r.decided_by ? "  decided by " + r.decided_by + " (the rules said " +
        (r.machine_status || "nothing") + (r.machine_reasons.length ? ": " + r.machine_reasons.join(", ") : "") + ")"
        : "  by the rules"));
      $("d-conflict").hidden = !r.conflict;
      $("d-conflict").textContent = r.conflict ? "⚠ " + r.conflict : "";
      $("d-text-source").textContent = r.text_source || "no text";
      $("d-text-source").className = "badge " + (r.text_source || "");
      $("d-text").textContent = r.text;
      $("d-asr").textContent = r.asr_text && r.asr_text !== r.text ? "ASR heard: " + r.asr_text : "";
    }

    function loadWave(r) {
      if (waves[r.clip_id]) { drawWave(waves[r.clip_id]); return; }
      var id = r.clip_id;
      fetch("/api/clips/" + encodeURIComponent(id) + "/wave", { credentials: "same-origin" })
        .then(function (x) { return x.ok ? x.json() : null; })
        .then(function (w) { if (w) { waves[id] = w; if (current() && current().clip_id === id) drawWave(w); } });
    }

    function drawWave(w, playhead) {
      var c = $("wave"), g = c.getContext("2d"), W = c.width, H = c.height, n = w.peaks.length;
      var x = function (t) { return (t - w.from_s) / Math.max(1e-6, w.to_s - w.from_s) * W; };
      g.clearRect(0, 0, W, H);
      g.fillStyle = "#e8f1f8";
      g.fillRect(x(w.start_s), 0, x(w.end_s) - x(w.start_s), H);
      for (var i = 0; i < n; i++) {
        var t = w.from_s + (i + 0.5) / n * (w.to_s - w.from_s), inside = t >= w.start_s && t <= w.end_s;
        g.fillStyle = inside ? "#0072B2" : "#bbb";
        var lo = w.peaks[i][0], hi = w.peaks[i][1], px = i / n * W;
        g.fillRect(px, H / 2 - hi * H / 2, Math.max(1, W / n), Math.max(1, (hi - lo) * H / 2));
      }
      g.fillStyle = "#D55E00";
      [w.start_s, w.end_s].forEach(function (t) { g.fillRect(x(t) - 1, 0, 2, H); });
      g.font = "11px sans-serif";
      g.fillText(w.start_s.toFixed(2) + " s", x(w.start_s) + 3, 12);
      g.fillText(w.end_s.toFixed(2) + " s", Math.max(0, x(w.end_s) - 48), 12);
      if (playhead !== undefined) { g.fillStyle = "#000"; g.fillRect(x(w.start_s + playhead), 0, 1, H); }
    }

    $("audio").addEventListener("timeupdate", function () {
      var r = current(), w = r && waves[r.clip_id];
      if (w) drawWave(w, $("audio").currentTime);
    });

    function enrolment(e, before) {
      var s = $("enrolment");
      s.textContent = "";
      s.className = "enrolment " + e.status.replace(/\s/g, "-");
      s.appendChild(el("b", null, page.speaker + ": "));
      s.appendChild(el("span", "status " + e.status, e.status));
      s.appendChild(el("span", null, "  " + e.accepted_s.toFixed(1) + " s accepted of the " + e.goal_s.toFixed(0) +
        " s goal, " + e.rejected_s.toFixed(1) + " s rejected"));
      s.appendChild(el("span", "quiet", "  reference: " + (page.reference || "chosen by the store")));
      if (before && before.status !== e.status) {
        s.appendChild(el("b", null, "  (was " + before.status + ")"));
        s.classList.add("changed");
      }
    }

    function message(text, error) {
      var m = $("message");
      m.hidden = !text;
      m.textContent = text || "";
      m.className = "message" + (error ? " error" : "");
    }

    function replaceRow(row) {
      var old = byId[row.clip_id];
      rows[rows.indexOf(old)] = row;
      byId[row.clip_id] = row;
      var tr = trs[row.clip_id];
      trs[row.clip_id] = rowEl(row);
      if (tr && tr.parentNode) tr.replaceWith(trs[row.clip_id]);
    }

    function act(body, then) {
      var r = current();
      if (!r) return;
      if (busy) { message("still saving the last change: press the key again in a moment", true); return; }
      closeTools();
      busy = true;
      body.version = r.version;
      body.machine = r.machine;   // the rules' verdict shown: a re-vet since is a conflict, not a silent change
      var tries = 0;
      (function send() {
        post("/api/clips/" + encodeURIComponent(r.clip_id) + "/review", body).then(function (res) {
          if (res.status === 503 && ++tries < 4) { message(res.body.error + " (trying again)", true); setTimeout(send, 2000); return; }
          busy = false;
          if (res.status === 200) {
            var b = res.body;
            rows.forEach(function (x) {   // the reference may have moved to this clip, or away from another
              var now = x.clip_id === b.reference_clip;
              if (x.reference !== now && x.clip_id !== b.clip.clip_id) { x.reference = now; replaceRow(x); }
            });
            page.reference = b.reference;
            replaceRow(b.clip);
            enrolment(b.enrolment, b.enrolment_before);
            message(b.enrolment.status !== b.enrolment_before.status ?
              page.speaker + " is now " + b.enrolment.status : "saved (review " + b.review_id + ")", false);
            markCurrent();
            if (current() && current().clip_id === b.clip.clip_id) showDetail(b.clip);
            if (then) then(b.clip);
          } else {
            if (res.body.clip) {
              replaceRow(res.body.clip);
              markCurrent();
              if (current() && current().clip_id === res.body.clip.clip_id) showDetail(res.body.clip);
            }
            var lost = body.action === "text" ? "  Your text was not saved: “" + body.text + "”" : "";
            message(res.body.error + lost, true);
          }
        }).catch(function (e) { busy = false; message("the server did not answer: " + e, true); });
      })();
    }

    // reject: the reason picker; the clip's own machine reasons come first
    var pickerReasons = [];
    function openPicker() {
      var r = current();
      if (!r) return;
      var p = $("picker");
      p.textContent = "";
      var first = r.machine_reasons.filter(function (x) { return data.reasons.indexOf(x) >= 0; });
      pickerReasons = first.concat(data.reasons.filter(function (x) { return first.indexOf(x) < 0 && x !== "other"; }));
      pickerReasons.slice(0, 9).forEach(function (x, i) {
        var b = el("button", null, (i + 1) + " " + (names[x] || x));
        b.type = "button";
        b.addEventListener("click", function () { reject(x); });
        p.appendChild(b);
      });
      var more = el("select");
      more.appendChild(el("option", null, "more…"));
      pickerReasons.slice(9).forEach(function (x) { var o = el("option", null, names[x] || x); o.value = x; more.appendChild(o); });
      more.addEventListener("change", function () { if (more.value) reject(more.value); });
      p.appendChild(more);
      var other = el("button", null, "o other…");
      other.type = "button";
      other.addEventListener("click", openNote);
      p.appendChild(other);
      p.hidden = false;
      p.dataset.open = "reasons";
    }
    function openNote() {
      var p = $("picker"), input = el("input");
      input.id = "note";
      input.placeholder = "what is wrong (Enter rejects, Esc cancels)";
      input.maxLength = 500;
      input.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter") { ev.preventDefault(); if (input.value.trim()) reject("other", input.value); }
        if (ev.key === "Escape") { ev.preventDefault(); closeTools(); }
        ev.stopPropagation();
      });
      p.appendChild(input);
      p.dataset.open = "note";
      input.focus();
    }
    function reject(reason, note) {
      closeTools();
      act({ action: "reject", reason: reason, note: note || null });
    }

    function openEditor() {
      var r = current();
      if (!r) return;
      var ed = $("editor");
      ed.value = r.text;
      ed.hidden = false;
      ed.focus();
    }
    $("editor").addEventListener("keydown", function (ev) {
      ev.stopPropagation();
      if (ev.key === "Escape") { ev.preventDefault(); closeTools(); }
      if (ev.key === "Enter" && !ev.shiftKey) {
        ev.preventDefault();
        var text = $("editor").value, r = current();
        closeTools();
        if (r && text.trim().split(/\s+/).join(" ") !== r.text.trim().split(/\s+/).join(" ")) act({ action: "text", text: text });
      }
    });

    function closeTools() {
      $("picker").hidden = true;
      $("picker").dataset.open = "";
      $("editor").hidden = true;
      if (document.activeElement && document.activeElement.blur && document.activeElement !== document.body &&
          document.activeElement.id !== "f-q") document.activeElement.blur();
    }

    function move(d) {
      if (!shown.length) return;
      select(Math.max(0, Math.min(shown.length - 1, cur + d)), false);
    }

    var actions = {
      accept: function () { act({ action: "accept" }); },
      reject: openPicker,
      agree: function () { act({ action: "agree" }); },
      text: openEditor,
      reference: function () { act({ action: "reference" }); },
      undo: function () { act({ action: "undo" }); }
    };
    document.querySelectorAll(".actions button").forEach(function (b) {
      b.addEventListener("click", function () { actions[b.dataset.act](); });
    });

    document.addEventListener("keydown", function (ev) {
      var tag = (ev.target.tagName || "").toLowerCase();
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      if (tag === "input" || tag === "textarea" || tag === "select") {
        if (ev.key === "Escape") { ev.target.blur(); closeTools(); }
        if (ev.key === "Enter" && ev.target.id === "f-q") ev.target.blur();
        return;
      }
      if ($("picker").dataset.open === "reasons") {
        var n = parseInt(ev.key, 10);
        if (n >= 1 && n <= 9 && pickerReasons[n - 1]) { ev.preventDefault(); reject(pickerReasons[n - 1]); return; }
        if (ev.key === "o") { ev.preventDefault(); openNote(); return; }
        if (ev.key === "Escape") { closeTools(); return; }
      }
      var key = ev.key, handled = true;
      if (key === "j" || key === "ArrowDown") move(1);
      else if (key === "k" || key === "ArrowUp") move(-1);
      else if (key === " ") { var a = $("audio"); if (a.paused) a.play().catch(function () {}); else a.pause(); }
      else if (key === "a") actions.accept();
      else if (key === "r") actions.reject();
      else if (key === "g") actions.agree();
      else if (key === "e") actions.text();
      else if (key === "p") actions.reference();
      else if (key === "u") actions.undo();
      else if (key === "/") $("f-q").focus();
      else if (key === "?") $("help").hidden = !$("help").hidden;
      else if (key === "Escape") closeTools();
      else handled = false;
      if (handled) ev.preventDefault();
    });

    ["f-status", "f-reason"].forEach(function (id) {
      $(id).addEventListener("change", function () { applyFilter(current() && current().clip_id); $(id).blur(); });
    });
    $("f-q").addEventListener("input", function () { applyFilter(current() && current().clip_id); });
    $("help-button").addEventListener("click", function () { $("help").hidden = !$("help").hidden; });

    enrolment(page.enrolment);
    var wanted = "";
    try { wanted = decodeURIComponent(location.hash.slice(1)); } catch (e) { wanted = ""; }
    applyFilter(byId[wanted] ? wanted : null);
    performance.mark("rows-drawn");
    window.__review = { select: function (id) { select(shown.indexOf(id), false); }, current: current,
                        filter: function (status) { $("f-status").value = status; applyFilter(null); return shown.length; } };
  }

  window.ClonebenchReview = { index: index, speaker: speaker };
})();
