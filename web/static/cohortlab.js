/* cohortlab dashboard: draws the server-built Plotly figures, submits the launch form and runs the
   promotion modal.
   No third-party code here: plotly.js and htmx are served from /static/vendor/. */
(function () {
  "use strict";

  // -- charts ------------------------------------------------------------------
  // <div data-figure="ID"> + <script type="application/json" id="ID">{data, layout}</script>
  function renderCharts(root) {
    if (typeof window.Plotly === "undefined") return;
    (root || document).querySelectorAll("[data-figure]").forEach(function (el) {
      if (el.dataset.rendered) return;
      var src = document.getElementById(el.dataset.figure);
      if (!src) return;
      var fig;
      try { fig = JSON.parse(src.textContent); } catch (e) { el.textContent = "Chart data could not be read."; return; }
      el.dataset.rendered = "1";
      window.Plotly.newPlot(el, fig.data || [], fig.layout || {}, {
        responsive: true, displaylogo: false, showLink: false, showSendToCloud: false,
        modeBarButtonsToRemove: ["select2d", "lasso2d"]
      });
    });
  }

  // -- launch form ---------------------------------------------------------------
  function fieldOf(form, name) {
    return form.querySelector('.field[data-field="' + name + '"]');
  }

  function clearErrors(form) {
    form.querySelectorAll(".field").forEach(function (f) {
      f.classList.remove("invalid");
      var p = f.querySelector(".field-error");
      if (p) p.textContent = "";
    });
    var fe = form.querySelector(".form-error");
    fe.hidden = true;
    fe.textContent = "";
  }

  function showFieldError(form, name, message) {
    var f = fieldOf(form, name);
    if (!f) return false;
    f.classList.add("invalid");
    var p = f.querySelector(".field-error");
    p.textContent = p.textContent ? p.textContent + " " + message : message;
    return true;
  }

  function showFormError(form, message) {
    var fe = form.querySelector(".form-error");
    fe.textContent = message;
    fe.hidden = false;
  }

  // Field name of one error of a problem document: {field} | {name} | {pointer: "/a/b"} | {loc: [...]}.
  function errorField(err) {
    if (!err || typeof err !== "object") return null;
    if (typeof err.field === "string") return err.field.split(".").pop();
    if (typeof err.name === "string") return err.name;
    if (typeof err.pointer === "string") return err.pointer.split("/").pop();
    if (Array.isArray(err.loc)) {
      for (var i = err.loc.length - 1; i >= 0; i--) if (typeof err.loc[i] === "string") return err.loc[i];
    }
    return null;
  }

  var ALIASES = {bars: "data", window: "start", folder: "data", data_dir: "data", authorization: "token"};

  function showProblem(form, status, problem) {
    var errors = [];
    if (problem && Array.isArray(problem.errors)) errors = problem.errors;
    else if (problem && Array.isArray(problem.detail)) errors = problem.detail;
    else if (problem && problem.invalid_params) errors = problem.invalid_params;
    var placed = 0;
    errors.forEach(function (err) {
      var name = errorField(err);
      if (name && ALIASES[name]) name = ALIASES[name];
      var msg = err.message || err.msg || err.detail || err.reason || JSON.stringify(err);
      if (name && showFieldError(form, name, msg)) placed++;
      else showFormError(form, (name ? name + ": " : "") + msg);
    });
    if (status === 401 || status === 403) {
      var refused = (problem && (problem.detail || problem.title)) ||
        "The token was refused: use your personal token or the server's COHORTLAB_API_TOKEN.";
      if (!showFieldError(form, "token", refused)) showFormError(form, refused);
      placed++;
    }
    if (!placed && form.querySelector(".form-error").hidden) {
      var text = problem ? (typeof problem.detail === "string" ? problem.detail : (problem.title || "")) : "";
      showFormError(form, "The cohort could not be launched (HTTP " + status + ")" + (text ? ": " + text : "."));
    }
  }

  // the session's CSRF token: the body's hx-headers (also sent by every HTMX request)
  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || ""; }
    catch (e) { return ""; }
  }

  function launchBody(form) {
    var v = function (n) { var el = form.elements[n]; return el ? el.value.trim() : ""; };
    var body = {
      bankroll: v("bankroll") === "" ? null : Number(v("bankroll")),
      agents: v("agents") === "" ? null : Number(v("agents")),
      allocation: v("allocation")
    };
    if (v("seed") !== "") body.seed = Number(v("seed"));
    if (v("data") !== "") body.data = v("data");
    if (v("symbols") !== "") body.symbols = v("symbols").split(/[\s,]+/).filter(Boolean);
    if (v("start") !== "") body.start = v("start");
    if (v("end") !== "") body.end = v("end");
    if (v("quote") !== "") body.quote = v("quote");
    if (v("seed_from") !== "") body.seed_from = v("seed_from");
    return body;
  }

  function bindLaunchForm() {
    var form = document.getElementById("launch-form");
    if (!form || form.dataset.bound) return;
    form.dataset.bound = "1";
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      clearErrors(form);
      // signed in (data-session="1"): the session's user launches, with the page's CSRF token;
      // otherwise the bearer token typed into the form (never stored)
      var session = form.dataset.session === "1";
      var token = form.elements.token ? form.elements.token.value.trim() : "";
      if (!token && !session) { showFieldError(form, "token", "Enter the API token, or sign in."); return; }
      var headers = {"Content-Type": "application/json", "Accept": "application/json, application/problem+json"};
      if (token) headers.Authorization = "Bearer " + token;
      else headers["X-CSRF-Token"] = csrfToken();
      var button = document.getElementById("launch");
      var status = document.getElementById("launch-status");
      button.disabled = true;
      status.textContent = "Launching…";
      fetch(form.dataset.api, {
        method: "POST",
        headers: headers,
        body: JSON.stringify(launchBody(form)),
        credentials: token ? "omit" : "same-origin"
      }).then(function (resp) {
        return resp.text().then(function (text) {
          var doc = null;
          try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = {detail: text}; }
          if (resp.ok && doc && doc.run_id) {
            status.textContent = "Launched " + doc.run_id + ", opening it…";
            var url = "/trading/cohorts/" + encodeURIComponent(doc.run_id);
            if (doc.job_id) url += "?job=" + encodeURIComponent(doc.job_id);
            window.location.assign(url);
            return;
          }
          button.disabled = false;
          status.textContent = "";
          showProblem(form, resp.status, doc);
        });
      }).catch(function (err) {
        button.disabled = false;
        status.textContent = "";
        showFormError(form, "The server could not be reached: " + err);
      });
    });
  }

  // -- the Day-3 promotion modal (#modal): close on its button, on Escape and on the backdrop
  function closeModal() {
    var m = document.getElementById("modal");
    if (m) m.innerHTML = "";
  }

  function bindModal() {
    document.addEventListener("click", function (ev) {
      var t = ev.target;
      if (t.closest && t.closest("[data-close-modal]")) closeModal();
      else if (t.classList && t.classList.contains("modal-backdrop")) closeModal();
    });
    document.addEventListener("keydown", function (ev) { if (ev.key === "Escape") closeModal(); });
    // a refused action (401/403/409/422) answers the modal (or a [data-swap-errors] target, the
    // deployment page's body) with the reason: show it
    document.body.addEventListener("htmx:beforeSwap", function (ev) {
      var d = ev.detail;
      if (d.target && (d.target.id === "modal" || d.target.hasAttribute("data-swap-errors")) && d.xhr && d.xhr.status >= 400 && d.xhr.status < 500) {
        d.shouldSwap = true;
        d.isError = false;
      }
    });
  }

  // forms whose buttons post with HTMX (form[data-htmx-only]: the deployment controls) are never
  // submitted by Enter; a select[data-autosubmit] submits its form when changed (no inline handlers:
  // the CSP allows scripts from this origin only)
  function bindForms() {
    document.addEventListener("submit", function (ev) {
      if (ev.target.matches && ev.target.matches("form[data-htmx-only]")) ev.preventDefault();
    });
    document.addEventListener("change", function (ev) {
      var t = ev.target;
      if (t.matches && t.matches("select[data-autosubmit]") && t.form) t.form.submit();
    });
  }

  function init() {
    renderCharts(document);
    bindLaunchForm();
    bindModal();
    bindForms();
    if (window.htmx) window.htmx.onLoad(function (el) { renderCharts(el); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
