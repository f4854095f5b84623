// The demo storefront: a reference client of the REST contract (docs/API.md).
// No framework, no build step, no inline script (the page's CSP is `default-src 'self'`).
// Every text from the API is put in the page with textContent, never as HTML.
"use strict";

(function () {
  const API = "/api/v1";
  const TOKEN_KEY = "lms.token";
  const USER_KEY = "lms.user";
  const PENDING_KEY = "lms.pendingCheckout";
  // How long the success page waits for a pending payment: POLL_TRIES checks, POLL_MS apart.
  const POLL_TRIES = 10;
  const POLL_MS = 1500;
  // ISO 4217 currencies without minor units (the others the API accepts have two).
  const ZERO_DECIMAL = new Set(["BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG",
    "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"]);

  const $ = (id) => document.getElementById(id);

  // ---- session (the JWT from the JSON response, kept for this tab only) ----
  const session = {
    token() { return sessionStorage.getItem(TOKEN_KEY); },
    user() {
      try { return JSON.parse(sessionStorage.getItem(USER_KEY) || "null"); } catch (_) { return null; }
    },
    save(token, user) {
      sessionStorage.setItem(TOKEN_KEY, token);
      sessionStorage.setItem(USER_KEY, JSON.stringify(user));
    },
    clear() {
      sessionStorage.removeItem(TOKEN_KEY);
      sessionStorage.removeItem(USER_KEY);
    },
  };

  // ---- money: integer minor units to text, with string arithmetic only ----
  function formatMoney(minor, currency) {
    const code = String(currency || "").toUpperCase();
    if (!Number.isSafeInteger(minor)) return "? " + code;
    const exponent = ZERO_DECIMAL.has(code) ? 0 : 2;
    const negative = minor < 0;
    let digits = String(Math.abs(minor));
    let fraction = "";
    if (exponent > 0) {
      digits = digits.padStart(exponent + 1, "0");
      fraction = "." + digits.slice(-exponent);
      digits = digits.slice(0, -exponent);
    }
    const grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (negative ? "-" : "") + grouped + fraction + " " + code;
  }

  function priceLabel(course) {
    return course.priceCents === 0 ? "Free" : formatMoney(course.priceCents, course.currency);
  }

  // ---- API calls ----
  class ApiError extends Error {
    constructor(message, status, code, errors) {
      super(message);
      this.status = status;
      this.code = code;
      this.errors = errors || [];
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    const token = session.token();
    if (token) headers.Authorization = "Bearer " + token;
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(API + path, init);
    } catch (_) {
      throw new ApiError("The server cannot be reached. Check your connection and try again.", 0, "NETWORK");
    }
    let json = null;
    try { json = await response.json(); } catch (_) { json = null; }
    if (!response.ok || (json && json.success === false)) {
      const message = (json && json.message) || ("Request failed (HTTP " + response.status + ").");
      if (response.status === 401 && token) {
        // Expired or revoked session: forget it so the page offers to sign in again.
        session.clear();
        renderSession();
      }
      throw new ApiError(message, response.status, json && json.code, json && json.errors);
    }
    return json || {};
  }

  // ---- notices ----
  function showError(err) {
    const box = $("error");
    box.replaceChildren();
    const text = err instanceof Error ? err.message : String(err);
    box.append(document.createTextNode(text));
    if (err instanceof ApiError && err.errors.length > 0) {
      const list = document.createElement("ul");
      for (const field of err.errors) {
        const item = document.createElement("li");
        item.textContent = field.field + ": " + field.message;
        list.append(item);
      }
      box.append(list);
    }
    box.dataset.code = (err && err.code) || "";
    box.hidden = false;
    $("message").hidden = true;
  }

  function showMessage(text) {
    $("message").textContent = text;
    $("message").hidden = false;
    $("error").hidden = true;
  }

  function clearNotices() {
    $("error").hidden = true;
    $("message").hidden = true;
  }

  // ---- rendering ----
  let owned = new Set();

  function renderSession() {
    const user = session.user();
    const signedIn = Boolean(session.token() && user);
    $("whoami").textContent = signedIn ? "Signed in as " + user.name + " (" + user.email + ")" : "Not signed in";
    $("whoami").dataset.role = signedIn ? user.role : "";
    $("signout").hidden = !signedIn;
    $("auth").hidden = signedIn;
    $("mine").hidden = !signedIn;
    if (!signedIn) {
      owned = new Set();
      $("my-courses").replaceChildren();
    }
  }

  function courseItem(course) {
    const item = document.createElement("li");
    item.className = "course";
    item.dataset.courseId = course.id;
    const title = document.createElement("h3");
    title.textContent = course.title;
    item.append(title);
    if (course.subtitle) {
      const subtitle = document.createElement("p");
      subtitle.className = "subtitle";
      subtitle.textContent = course.subtitle;
      item.append(subtitle);
    }
    const price = document.createElement("p");
    price.className = "price";
    price.textContent = priceLabel(course);
    item.append(price);
    return item;
  }

  let catalogue = [];

  function renderCatalogue() {
    const list = $("courses");
    list.replaceChildren();
    $("courses-empty").hidden = catalogue.length > 0;
    for (const course of catalogue) {
      const item = courseItem(course);
      if (owned.has(course.id)) {
        const badge = document.createElement("p");
        badge.className = "owned";
        badge.dataset.owned = course.id;
        badge.textContent = "Enrolled";
        item.append(badge);
      } else {
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.buy = course.id;
        button.textContent = course.priceCents === 0 ? "Enrol for free" : "Buy";
        button.addEventListener("click", () => buy(course, button));
        item.append(button);
      }
      list.append(item);
    }
  }

  async function loadCatalogue() {
    try {
      const json = await api("GET", "/courses/published?page=1&limit=50");
      catalogue = Array.isArray(json.data) ? json.data : [];
      renderCatalogue();
    } catch (err) {
      showError(err);
    }
  }

  async function loadMyCourses() {
    if (!session.token()) return;
    try {
      const json = await api("GET", "/payments/purchased-courses");
      const items = Array.isArray(json.data) ? json.data : [];
      owned = new Set(items.map((c) => c.id));
      const list = $("my-courses");
      list.replaceChildren();
      $("my-courses-empty").hidden = items.length > 0;
      for (const course of items) {
        const item = courseItem(course);
        item.dataset.purchaseId = course.purchaseId || "";
        const paid = document.createElement("p");
        paid.className = "paid";
        const when = course.purchasedAt ? new Date(course.purchasedAt) : null;
        paid.textContent = (course.amountCents === 0 ? "Free enrolment" : "Paid " + formatMoney(course.amountCents, course.currency))
          + (when && !isNaN(when) ? " on " + when.toLocaleDateString() : "");
        item.append(paid);
        list.append(item);
      }
      $("my-courses").dataset.loaded = "true";
      renderCatalogue();
    } catch (err) {
      showError(err);
    }
  }

  // ---- actions ----
  async function signUp(event) {
    event.preventDefault();
    const form = event.currentTarget;
    await authenticate("/user/signup", {
      name: form.elements.name.value.trim(),
      email: form.elements.email.value.trim(),
      password: form.elements.password.value,
      role: form.elements.role.value,
    }, form);
  }

  async function signIn(event) {
    event.preventDefault();
    const form = event.currentTarget;
    await authenticate("/user/signin", {
      email: form.elements.email.value.trim(),
      password: form.elements.password.value,
    }, form);
  }

  async function authenticate(path, body, form) {
    clearNotices();
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const json = await api("POST", path, body);
      if (!json.token || !json.user) throw new ApiError("The server did not return a session.", 0, "NO_TOKEN");
      session.save(json.token, json.user);
      form.reset();
      renderSession();
      showMessage("Welcome, " + json.user.name + ".");
      await loadMyCourses();
      if (isSuccessPage()) await showPurchaseStatus();
    } catch (err) {
      showError(err);
    } finally {
      submit.disabled = false;
    }
  }

  async function signOut() {
    clearNotices();
    try {
      await api("POST", "/user/signout");
    } catch (_) {
      // Signing out locally is what matters; the cookie expires anyway.
    }
    session.clear();
    sessionStorage.removeItem(PENDING_KEY);
    renderSession();
    renderCatalogue();
    showMessage("You are signed out.");
  }

  async function buy(course, button) {
    clearNotices();
    if (!session.token()) {
      showError(new ApiError("Sign in or create an account to buy a course.", 401, "SIGN_IN_REQUIRED"));
      $("signin-email").focus();
      return;
    }
    button.disabled = true;
    try {
      const json = await api("POST", "/payments/create-checkout-session", { courseId: course.id });
      const checkout = json.data && json.data.session;
      if (!checkout) throw new ApiError("The server did not return a checkout session.", 0, "NO_SESSION");
      if (checkout.status === "complete" || checkout.payment_status === "no_payment_required") {
        // A free course: enrolled at once, nothing to pay.
        showMessage("You are enrolled in " + course.title + ".");
        await loadMyCourses();
        return;
      }
      const target = new URL(String(checkout.url || ""), window.location.href);
      if (target.protocol !== "https:" && target.protocol !== "http:") {
        throw new ApiError("The checkout address is not valid.", 0, "BAD_CHECKOUT_URL");
      }
      sessionStorage.setItem(PENDING_KEY, JSON.stringify({ courseId: course.id, title: course.title }));
      window.location.assign(target.href);
    } catch (err) {
      showError(err);
      button.disabled = false;
    }
  }

  // ---- payment result pages ----
  function isSuccessPage() { return window.location.pathname === "/payment/success"; }
  function isCancelPage() { return window.location.pathname === "/payment/cancel"; }

  function pendingCheckout() {
    try { return JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null"); } catch (_) { return null; }
  }

  const STATUS_TEXT = {
    completed: "completed: the course is unlocked",
    pending: "pending: the payment is being confirmed",
    failed: "failed: the payment did not go through",
    refunded: "refunded: the course is locked",
    "not purchased": "not purchased",
  };

  function setStatus(status, detail) {
    const el = $("purchase-status");
    // The statuses this page has shown, in order ("pending,completed"): lets a test see the
    // page wait through a pending payment.
    const seen = el.dataset.history ? el.dataset.history.split(",") : [];
    if (seen[seen.length - 1] !== status) seen.push(status);
    el.dataset.history = seen.join(",");
    el.dataset.status = status;
    el.textContent = STATUS_TEXT[status] || status;
    $("payment-detail").textContent = detail || "";
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  let polling = false;

  async function showPurchaseStatus() {
    $("payment-result").hidden = false;
    $("payment-title").textContent = "Your payment";
    const params = new URLSearchParams(window.location.search);
    const sessionId = params.get("session_id");
    const pending = pendingCheckout();
    const courseId = (pending && pending.courseId) || params.get("course_id");
    if (!courseId) {
      setStatus("unknown", "We do not know which course this payment was for. See \"My courses\" below.");
      await loadMyCourses();
      return;
    }
    if (pending && pending.title) $("payment-course").textContent = pending.title;
    if (!session.token()) {
      setStatus("unknown", "Sign in to see the status of your purchase.");
      return;
    }
    if (polling) return;
    polling = true;
    $("check-again").hidden = true;
    try {
      let query = sessionId ? "?session_id=" + encodeURIComponent(sessionId) : "";
      for (let attempt = 1; attempt <= POLL_TRIES; attempt += 1) {
        const json = await api("GET", "/payments/courses/" + encodeURIComponent(courseId) + "/purchase-status" + query);
        const data = json.data || {};
        if (data.course && data.course.title) $("payment-course").textContent = data.course.title;
        const status = data.purchaseStatus || "unknown";
        if (status !== "pending") {
          const unlocked = data.isPurchased === true;
          setStatus(status, unlocked ? "Unlocked. Enjoy the course." : "");
          $("purchase-status").dataset.unlocked = String(unlocked);
          if (status === "completed" || status === "failed" || status === "refunded") {
            sessionStorage.removeItem(PENDING_KEY);
          }
          await loadMyCourses();
          return;
        }
        setStatus("pending", "Waiting for the payment provider (check " + attempt + " of " + POLL_TRIES + ").");
        // The first check asks the gateway about the session; later ones read our state,
        // which the webhook updates.
        query = "";
        await sleep(POLL_MS);
      }
      setStatus("pending", "The payment is still being confirmed. Check again in a moment.");
      $("check-again").hidden = false;
    } catch (err) {
      showError(err);
      $("check-again").hidden = false;
    } finally {
      polling = false;
    }
  }

  function showCancelled() {
    $("payment-result").hidden = false;
    $("payment-title").textContent = "Checkout cancelled";
    const pending = pendingCheckout();
    if (pending && pending.title) $("payment-course").textContent = pending.title;
    setStatus("cancelled", "You have not been charged. You can buy the course again at any time.");
    sessionStorage.removeItem(PENDING_KEY);
  }

  // ---- start ----
  async function refreshProfile() {
    if (!session.token()) return;
    try {
      const json = await api("GET", "/user/profile");
      if (json.user) session.save(session.token(), json.user);
    } catch (_) {
      // A 401 already cleared the session; anything else leaves the stored profile.
    }
    renderSession();
  }

  async function start() {
    $("signup-form").addEventListener("submit", signUp);
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", signOut);
    $("refresh-my-courses").addEventListener("click", loadMyCourses);
    $("check-again").addEventListener("click", showPurchaseStatus);
    renderSession();
    await refreshProfile();
    await Promise.all([loadCatalogue(), loadMyCourses()]);
    if (isSuccessPage()) await showPurchaseStatus();
    if (isCancelPage()) showCancelled();
    document.body.dataset.ready = "true";
  }

  // Exposed for tests and the console; nothing depends on it.
  window.lmsStorefront = { formatMoney };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
