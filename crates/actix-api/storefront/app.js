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
  // ISO 4217 currencies without minor units, and those with three; the others have two.
  // The API's own currencies (prices, and payments presented in the customer's currency by
  // Stripe's Adaptive Pricing) are covered, and a currency it may learn later formats too.
  const ZERO_DECIMAL = new Set(["BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG",
    "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"]);
  const THREE_DECIMAL = new Set(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"]);
  // Rows a page of the order history shows.
  const ORDERS_LIMIT = 20;
  // How many pages of the order history the success page reads looking for its purchase
  // (newest first, so it is nearly always on the first).
  const ORDER_SEARCH_PAGES = 5;

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
  function currencyExponent(code) {
    if (ZERO_DECIMAL.has(code)) return 0;
    return THREE_DECIMAL.has(code) ? 3 : 2;
  }

  function formatMoney(minor, currency) {
    const code = String(currency || "").toUpperCase();
    if (!Number.isSafeInteger(minor)) return "? " + code;
    const exponent = currencyExponent(code);
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

  // Sends a request with the session's bearer token; a network failure is an ApiError.
  async function send(method, path, body, accept) {
    const headers = { Accept: accept || "application/json" };
    const token = session.token();
    if (token) headers.Authorization = "Bearer " + token;
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    try {
      return { response: await fetch(API + path, init), token };
    } catch (_) {
      throw new ApiError("The server cannot be reached. Check your connection and try again.", 0, "NETWORK");
    }
  }

  // The ApiError of a failed answer, from its JSON envelope when it has one.
  function failure(response, json, token) {
    const message = (json && json.message) || ("Request failed (HTTP " + response.status + ").");
    if (response.status === 401 && token) {
      // Expired or revoked session: forget it so the page offers to sign in again.
      session.clear();
      renderSession();
    }
    return new ApiError(message, response.status, json && json.code, json && json.errors);
  }

  async function api(method, path, body) {
    const { response, token } = await send(method, path, body);
    let json = null;
    try { json = await response.json(); } catch (_) { json = null; }
    if (!response.ok || (json && json.success === false)) throw failure(response, json, token);
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

  function isAdmin() {
    const user = session.user();
    return Boolean(session.token() && user && user.role === "admin");
  }

  // Instructors see what their own courses earned, admins what every course did.
  function seesRevenue() {
    const user = session.user();
    return Boolean(session.token() && user && (user.role === "instructor" || user.role === "admin"));
  }

  function renderSession() {
    const user = session.user();
    const signedIn = Boolean(session.token() && user);
    const page = pageName();
    const store = page === "store";
    $("whoami").textContent = signedIn ? "Signed in as " + user.name + " (" + user.email + ")" : "Not signed in";
    $("whoami").dataset.role = signedIn ? user.role : "";
    $("signout").hidden = !signedIn;
    $("auth").hidden = signedIn;
    $("mine").hidden = !signedIn || !store;
    $("catalogue").hidden = !store;
    document.body.classList.toggle("wide", !store);
    // The role comes from the profile, refreshed at every page load: a grant or a revocation
    // shows at the next visit. The API refuses the others anyway; this only hides what they
    // could not use.
    $("orders-link").hidden = !signedIn || page === "orders";
    $("revenue-link").hidden = !seesRevenue() || page === "revenue";
    $("ops-link").hidden = !isAdmin() || page === "operations";
    $("operations").hidden = !(page === "operations" && isAdmin());
    $("ops-denied").hidden = !(page === "operations" && signedIn && !isAdmin());
    $("orders").hidden = !(page === "orders" && signedIn);
    $("orders-signin").hidden = !(page === "orders" && !signedIn);
    $("revenue").hidden = !(page === "revenue" && seesRevenue());
    $("revenue-denied").hidden = !(page === "revenue" && signedIn && !seesRevenue());
    $("revenue-instructor-field").hidden = !isAdmin();
    if (!signedIn) {
      owned = new Set();
      $("my-courses").replaceChildren();
      $("order-history").tBodies[0].replaceChildren();
      $("revenue-lines").tBodies[0].replaceChildren();
      $("revenue-lines").tFoot.replaceChildren();
      delete $("orders").dataset.loaded;
      delete $("revenue").dataset.loaded;
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
        // `amountCents` is the course's price, not what was paid (a promotion code may have
        // lowered it): the Orders page shows the bill.
        paid.textContent = (course.amountCents === 0 ? "Free enrolment" : "Bought")
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
      await loadPage();
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

  // ---- pages ----
  const PAGES = { "/operations": "operations", "/orders": "orders", "/revenue": "revenue" };

  // "operations", "orders", "revenue", or "store" (the courses, and the payment result pages).
  function pageName() { return PAGES[window.location.pathname] || "store"; }

  // Loads what the current page shows for the signed-in user.
  async function loadPage() {
    switch (pageName()) {
      case "operations":
        if (isAdmin()) await loadOperations();
        break;
      case "orders":
        await loadOrders(1);
        break;
      case "revenue":
        if (seesRevenue()) await loadRevenue();
        break;
      default:
        await loadMyCourses();
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
          const purchaseId = data.purchase && data.purchase.id;
          await Promise.all([loadMyCourses(), status === "completed" ? showCharged(purchaseId) : null]);
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

  // The purchase `purchaseId` as the order history shows it (with its bill), or null.
  async function findOrder(purchaseId) {
    for (let page = 1; page <= ORDER_SEARCH_PAGES; page += 1) {
      const json = await api("GET", "/payments/purchases?page=" + page + "&limit=100");
      const items = Array.isArray(json.data) ? json.data : [];
      const found = items.find((item) => item.id === purchaseId);
      if (found) return found;
      if (!(json.pagination && json.pagination.hasNextPage)) break;
    }
    return null;
  }

  // What a completed purchase charged: the bill's total (after any promotion code, with tax)
  // when the payment provider reported the bill, else the amount captured.
  async function showCharged(purchaseId) {
    const box = $("payment-charged");
    box.hidden = true;
    if (!purchaseId) return;
    let order;
    try {
      order = await findOrder(purchaseId);
    } catch (_) {
      // The status above is what matters; the amount is a courtesy.
      return;
    }
    if (!order) return;
    const amount = $("charged-amount");
    const bill = order.bill;
    if (bill) {
      amount.textContent = formatMoney(bill.totalCents, bill.currency) + conversionNote(bill, "totalCents");
      amount.dataset.cents = String(bill.totalCents);
      amount.dataset.currency = String(bill.currency).toUpperCase();
      $("charged-breakdown").textContent = billBreakdown(order);
    } else if (order.paidCents !== null && order.paidCents !== undefined) {
      amount.textContent = formatMoney(order.paidCents, order.paidCurrency);
      amount.dataset.cents = String(order.paidCents);
      amount.dataset.currency = String(order.paidCurrency).toUpperCase();
      $("charged-breakdown").textContent = "";
    } else {
      return;
    }
    box.hidden = false;
  }

  // " (14.99 USD)": a presented amount in the price's currency, when Stripe converted it.
  function conversionNote(bill, field) {
    const conversion = bill.conversion;
    if (!conversion || conversion[field] === null || conversion[field] === undefined) return "";
    return " (" + formatMoney(conversion[field], conversion.currency) + ")";
  }

  // "Price 19.99 USD, discount -5.00 USD (promotion code SPRING25), tax 0.00 USD."
  function billBreakdown(order) {
    const bill = order.bill;
    let text = "Price " + formatMoney(bill.subtotalCents, bill.currency);
    if (bill.discountCents > 0) {
      text += ", discount " + formatMoney(-bill.discountCents, bill.currency);
      if (order.promotionCode) text += " (promotion code " + order.promotionCode + ")";
    }
    if (bill.taxCents > 0) text += ", tax " + formatMoney(bill.taxCents, bill.currency);
    return text + ".";
  }

  function showCancelled() {
    $("payment-result").hidden = false;
    $("payment-title").textContent = "Checkout cancelled";
    const pending = pendingCheckout();
    if (pending && pending.title) $("payment-course").textContent = pending.title;
    setStatus("cancelled", "You have not been charged. You can buy the course again at any time.");
    sessionStorage.removeItem(PENDING_KEY);
  }

  // ---- operations (admins only) ----
  const OPS_EVENT_OUTCOMES = ["failed", "unmatched"];
  const AUDIT_LIMIT = 20;
  let auditPage = 1;

  const OUTCOME_TEXT = {
    applied: "applied: its facts were merged into the purchase",
    held: "held: the purchase is held for review",
    duplicate: "already applied: nothing changed",
    ignored: "ignored: a type this shop does not act on",
    unmatched: "unmatched: it is about no purchase known here",
    failed: "failed again",
  };

  const ACTION_TEXT = {
    refund: "Refund",
    accept_held: "Accepted a held payment",
    refund_held: "Refunded a held payment",
    refund_double_payment: "Refunded a double payment",
    replay_event: "Replayed an event",
    grant_admin: "Made admin",
    revoke_admin: "Admin role taken back",
  };

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (className) td.className = className;
    return td;
  }

  // An id cell: the start of the id, the whole of it on hover and for copying.
  function idCell(id) {
    const td = document.createElement("td");
    const code = document.createElement("code");
    code.className = "short";
    code.textContent = id ? String(id).slice(0, 8) + "\u2026" : "";
    code.title = id || "";
    td.append(code);
    return td;
  }

  // A provider id in full, breakable anywhere so that it never widens the table.
  function codeCell(text) {
    const td = document.createElement("td");
    const code = document.createElement("code");
    code.textContent = text;
    td.append(code);
    return td;
  }

  function when(iso) {
    const date = iso ? new Date(iso) : null;
    return date && !isNaN(date) ? date.toLocaleString() : "";
  }

  function button(text, data, onClick, className) {
    const el = document.createElement("button");
    el.type = "button";
    el.textContent = text;
    for (const [key, value] of Object.entries(data)) el.dataset[key] = value;
    if (className) el.className = className;
    el.addEventListener("click", onClick);
    return el;
  }

  // An empty table is left out, frame and all; its "nothing here" line shows instead.
  function showTable(id, shown) {
    $(id).closest(".table-wrap").hidden = !shown;
  }

  async function loadOperations() {
    if (!isAdmin()) return;
    await Promise.all([loadHeld(), loadOpsEvents(), loadAudit()]);
    $("operations").dataset.loaded = "true";
  }

  async function loadHeld() {
    const body = $("held-purchases").tBodies[0];
    try {
      const json = await api("GET", "/admin/purchases/held?page=1&limit=100");
      const items = Array.isArray(json.data) ? json.data : [];
      body.replaceChildren(...items.map(heldRow));
      $("held-empty").hidden = items.length > 0;
      showTable("held-purchases", items.length > 0);
    } catch (err) {
      showError(err);
    }
  }

  function heldRow(purchase) {
    const row = document.createElement("tr");
    row.dataset.purchaseId = purchase.id;
    row.append(
      idCell(purchase.id),
      idCell(purchase.userId),
      idCell(purchase.courseId),
      cell(formatMoney(purchase.amountCents, purchase.currency), "money"),
      cell(purchase.receivedCents === null || purchase.receivedCents === undefined
        ? "?" : formatMoney(purchase.receivedCents, purchase.receivedCurrency), "money received"),
      codeCell(purchase.paymentIntentId || ""),
      cell(when(purchase.updatedAt)),
    );
    const decision = document.createElement("td");
    decision.className = "decision";
    showDecisionButtons(decision, purchase);
    row.append(decision);
    return row;
  }

  function showDecisionButtons(decision, purchase) {
    decision.replaceChildren(
      button("Accept", { accept: purchase.id }, () => askReason(decision, purchase, "accept")),
      button("Refund", { refund: purchase.id }, () => askReason(decision, purchase, "refund"), "danger"),
    );
  }

  // Asks for the reason in place (no modal dialog): the audit trail keeps it.
  function askReason(decision, purchase, action) {
    clearNotices();
    const form = document.createElement("form");
    form.className = "reason-form";
    form.dataset.action = action;
    const label = document.createElement("label");
    const inputId = "reason-" + action + "-" + purchase.id;
    label.htmlFor = inputId;
    label.textContent = action === "accept"
      ? "Why accept " + formatMoney(purchase.receivedCents, purchase.receivedCurrency) + " for this course?"
      : "Why refund " + formatMoney(purchase.receivedCents, purchase.receivedCurrency) + "?";
    const input = document.createElement("input");
    input.id = inputId;
    input.required = true;
    input.maxLength = 500;
    input.dataset.reasonFor = purchase.id;
    const confirm = document.createElement("button");
    confirm.type = "submit";
    confirm.dataset.confirm = purchase.id;
    confirm.textContent = action === "accept" ? "Accept payment" : "Refund payment";
    if (action === "refund") confirm.className = "danger";
    const cancel = button("Cancel", { cancel: purchase.id }, () => showDecisionButtons(decision, purchase), "link");
    form.append(label, input, confirm, cancel);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      resolveHeld(purchase, action, input.value, form);
    });
    decision.replaceChildren(form);
    input.focus();
  }

  async function resolveHeld(purchase, action, reason, form) {
    clearNotices();
    if (!reason.trim()) {
      showError(new ApiError("Give a reason: it is kept in the audit trail.", 0, "REASON_REQUIRED"));
      return;
    }
    for (const control of form.elements) control.disabled = true;
    try {
      const json = await api("POST", "/admin/purchases/" + encodeURIComponent(purchase.id) + "/" + action, { reason: reason.trim() });
      const result = (json.data && json.data.purchase) || {};
      showMessage((action === "accept" ? "Accepted" : "Refund requested for") + " purchase "
        + purchase.id + ": it is now " + (result.status || "updated") + ".");
      await Promise.all([loadHeld(), loadAudit(1)]);
    } catch (err) {
      for (const control of form.elements) control.disabled = false;
      showError(err);
      // Someone else resolved it meanwhile: show the list as it is now.
      if (err.code === "NOT_HELD" || err.code === "PURCHASE_NOT_FOUND") await loadHeld();
    }
  }

  async function loadOpsEvents() {
    const body = $("ops-events").tBodies[0];
    try {
      const pages = await Promise.all(OPS_EVENT_OUTCOMES.map((outcome) =>
        api("GET", "/admin/events?outcome=" + outcome + "&page=1&limit=100")));
      const events = pages.flatMap((json) => (Array.isArray(json.data) ? json.data : []));
      events.sort((a, b) => String(b.lastReceivedAt).localeCompare(String(a.lastReceivedAt)));
      body.replaceChildren(...events.map(eventRow));
      $("ops-events-empty").hidden = events.length > 0;
      showTable("ops-events", events.length > 0);
    } catch (err) {
      showError(err);
    }
  }

  function eventRow(event) {
    const row = document.createElement("tr");
    row.dataset.eventId = event.eventId;
    row.dataset.outcome = event.outcome;
    const outcome = cell(event.outcome, "outcome");
    outcome.dataset.outcome = event.outcome;
    const actions = document.createElement("td");
    actions.className = "decision";
    const replayButton = button("Replay", { replay: event.eventId }, () => replay(event, replayButton));
    if (!event.hasPayload) {
      replayButton.disabled = true;
      replayButton.title = "Its payload was pruned after the retention period.";
    }
    actions.append(replayButton, button("Details", { showEvent: event.eventId }, () => showEvent(event.eventId), "link"));
    row.append(codeCell(event.eventId), cell(event.type), outcome, cell(event.error || ""), cell(event.deliveryCount),
      cell(when(event.lastReceivedAt)), actions);
    return row;
  }

  async function replay(event, replayButton) {
    clearNotices();
    replayButton.disabled = true;
    try {
      const json = await api("POST", "/admin/events/" + encodeURIComponent(event.eventId) + "/replay");
      const data = json.data || {};
      let text = "Replayed " + event.eventId + ": " + (OUTCOME_TEXT[data.outcome] || data.outcome);
      if (data.error) text += " (" + data.error + ")";
      showMessage(text + ".");
      $("message").dataset.outcome = data.outcome || "";
      await Promise.all([loadOpsEvents(), loadHeld(), loadAudit(1)]);
    } catch (err) {
      replayButton.disabled = false;
      showError(err);
    }
  }

  async function showEvent(eventId) {
    clearNotices();
    try {
      const json = await api("GET", "/admin/events/" + encodeURIComponent(eventId));
      const data = json.data || {};
      $("event-detail-id").textContent = eventId;
      $("event-detail-payload").textContent = data.payload === null || data.payload === undefined
        ? "The payload was pruned after the retention period."
        : JSON.stringify(data.payload, null, 2);
      $("event-detail").hidden = false;
    } catch (err) {
      showError(err);
    }
  }

  function actorText(actor) {
    if (!actor) return "";
    if (actor.kind === "user") {
      const me = session.user();
      return me && me.id === actor.userId ? "you" : "admin " + String(actor.userId || "").slice(0, 8) + "\u2026";
    }
    return actor.kind === "operator" ? "operator (command line)" : "system";
  }

  function auditRow(entry) {
    const row = document.createElement("tr");
    row.dataset.action = entry.action;
    if (entry.purchaseId) row.dataset.purchaseId = entry.purchaseId;
    if (entry.eventId) row.dataset.eventId = entry.eventId;
    const about = [];
    if (entry.eventId) about.push("event " + entry.eventId);
    if (entry.purchaseId) about.push("purchase " + entry.purchaseId);
    if (entry.subjectUserId) about.push("user " + entry.subjectUserId);
    const who = cell(actorText(entry.actor));
    who.dataset.actor = entry.actor ? entry.actor.kind : "";
    row.append(
      cell(when(entry.at)),
      who,
      cell(ACTION_TEXT[entry.action] || entry.action, "action"),
      cell(about.join(", "), "about"),
      cell(entry.amount ? formatMoney(entry.amount.cents, entry.amount.currency) : "", "money"),
      cell(entry.reason, "reason"),
    );
    return row;
  }

  async function loadAudit(page) {
    if (page) auditPage = page;
    const body = $("audit-trail").tBodies[0];
    try {
      const json = await api("GET", "/admin/audit?page=" + auditPage + "&limit=" + AUDIT_LIMIT);
      const items = Array.isArray(json.data) ? json.data : [];
      const pagination = json.pagination || {};
      body.replaceChildren(...items.map(auditRow));
      $("audit-empty").hidden = items.length > 0;
      showTable("audit-trail", items.length > 0);
      $("audit-newer").disabled = !pagination.hasPrevPage;
      $("audit-older").disabled = !pagination.hasNextPage;
      $("audit-page").textContent = pagination.totalPages > 1
        ? "page " + pagination.page + " of " + pagination.totalPages : "";
    } catch (err) {
      showError(err);
    }
  }

  // ---- orders (the signed-in user's purchases) ----
  let ordersPage = 1;

  const ORDER_STATUS_TEXT = {
    completed: "paid",
    pending: "pending",
    failed: "failed",
    refunded: "refunded",
  };

  async function loadOrders(page) {
    if (!session.token()) return;
    if (page) ordersPage = page;
    const body = $("order-history").tBodies[0];
    try {
      const json = await api("GET", "/payments/purchases?page=" + ordersPage + "&limit=" + ORDERS_LIMIT);
      const items = Array.isArray(json.data) ? json.data : [];
      const pagination = json.pagination || {};
      body.replaceChildren(...items.map(orderRow));
      $("orders-empty").hidden = items.length > 0;
      showTable("order-history", items.length > 0);
      $("orders-newer").disabled = !pagination.hasPrevPage;
      $("orders-older").disabled = !pagination.hasNextPage;
      $("orders-page").textContent = pagination.totalPages > 1
        ? "page " + pagination.page + " of " + pagination.totalPages : "";
      $("orders-pager").hidden = !(pagination.totalPages > 1);
      $("orders").dataset.loaded = "true";
    } catch (err) {
      showError(err);
    }
  }

  const NONE = "\u2014";

  function present(value) { return value !== null && value !== undefined; }

  // A money cell; `note` (a conversion) goes on a line of its own.
  function moneyCell(text, className, note) {
    const td = cell(text, "money " + className);
    if (note) {
      const small = document.createElement("span");
      small.className = "conversion";
      small.textContent = note;
      small.title = "In the course's own currency, at the payment provider's rate";
      td.append(document.createElement("br"), small);
    }
    return td;
  }

  function orderRow(order) {
    const row = document.createElement("tr");
    row.dataset.purchaseId = order.id;
    row.dataset.status = order.status;
    const course = document.createElement("th");
    course.scope = "row";
    course.textContent = (order.course && order.course.title) || "";
    if (order.course) course.dataset.courseId = order.course.id;
    const status = cell(ORDER_STATUS_TEXT[order.status] || order.status, "status");
    status.dataset.status = order.status;
    row.append(course, cell(day(order.createdAt)), status, ...billCells(order));

    const paid = present(order.paidCents) ? formatMoney(order.paidCents, order.paidCurrency) : NONE;
    const refunded = order.refundedCents > 0
      ? formatMoney(order.refundedCents, order.paidCurrency || order.currency) : NONE;
    row.append(moneyCell(paid, "paid"), moneyCell(refunded, "refunded"));

    const code = document.createElement("td");
    code.className = "promotion-code";
    if (order.promotionCode) {
      const text = document.createElement("code");
      text.textContent = order.promotionCode;
      code.append(text);
    } else {
      code.textContent = NONE;
    }
    row.append(code, receiptCell(order));

    const refund = document.createElement("td");
    refund.className = "decision";
    showRefundButton(refund, order);
    row.append(refund);
    return row;
  }

  // Subtotal, discount, tax and total: the bill when the payment provider reported one, else
  // the price alone (a free enrolment, a checkout never paid, a payment from before bills).
  function billCells(order) {
    const bill = order.bill;
    if (!bill) {
      const price = order.amountCents === 0 ? "Free" : formatMoney(order.amountCents, order.currency);
      return [moneyCell(price, "subtotal"), moneyCell(NONE, "discount"), moneyCell(NONE, "tax"),
        moneyCell(NONE, "total")];
    }
    const discount = bill.discountCents > 0 ? formatMoney(-bill.discountCents, bill.currency) : formatMoney(0, bill.currency);
    return [
      moneyCell(formatMoney(bill.subtotalCents, bill.currency), "subtotal", conversionNote(bill, "subtotalCents").trim()),
      moneyCell(discount, "discount"),
      moneyCell(formatMoney(bill.taxCents, bill.currency), "tax"),
      moneyCell(formatMoney(bill.totalCents, bill.currency), "total", conversionNote(bill, "totalCents").trim()),
    ];
  }

  function receiptCell(order) {
    const td = document.createElement("td");
    td.className = "receipt";
    let target = null;
    try {
      target = order.receiptUrl ? new URL(String(order.receiptUrl)) : null;
    } catch (_) {
      target = null;
    }
    // Only a web address becomes a link (never a script URL).
    if (!target || (target.protocol !== "https:" && target.protocol !== "http:")) {
      td.textContent = NONE;
      return td;
    }
    const link = document.createElement("a");
    link.href = target.href;
    link.target = "_blank";
    link.rel = "noopener";
    link.textContent = "Receipt";
    link.setAttribute("aria-label", "Receipt for " + ((order.course && order.course.title) || "this order") + " (opens in a new tab)");
    td.append(link);
    return td;
  }

  function day(iso) {
    const date = iso ? new Date(iso) : null;
    return date && !isNaN(date) ? date.toLocaleDateString() : "";
  }

  // The refund the buyer may ask for: what was captured and not refunded yet.
  function refundable(order) {
    if (!present(order.paidCents)) return null;
    return formatMoney(order.paidCents - (order.refundedCents || 0), order.paidCurrency);
  }

  function showRefundButton(td, order) {
    td.replaceChildren();
    if (!order.selfRefundUntil) return;
    const ask = button("Request refund", { refundRequest: order.id }, () => askRefund(td, ask, order), "danger");
    const until = document.createElement("span");
    until.className = "hint until";
    until.textContent = "until " + day(order.selfRefundUntil);
    until.title = when(order.selfRefundUntil);
    td.append(ask, until);
  }

  // Asks before sending, in a row of its own under the order (no modal dialog): a refund
  // cannot be taken back.
  function askRefund(td, ask, order) {
    clearNotices();
    const row = td.closest("tr");
    const confirmRow = document.createElement("tr");
    confirmRow.className = "refund-confirm";
    confirmRow.dataset.refundFor = order.id;
    const cellEl = document.createElement("td");
    cellEl.colSpan = row.cells.length;
    const form = document.createElement("form");
    form.className = "reason-form";
    const title = (order.course && order.course.title) || "this course";
    const amount = refundable(order);
    const question = document.createElement("p");
    question.className = "question";
    question.textContent = "Refund " + (amount ? amount + " " : "") + "for " + title
      + "? The course locks once the refund goes through.";
    const label = document.createElement("label");
    const inputId = "refund-reason-" + order.id;
    label.htmlFor = inputId;
    label.textContent = "Reason (optional)";
    const input = document.createElement("input");
    input.id = inputId;
    input.maxLength = 500;
    input.dataset.refundReasonFor = order.id;
    const confirm = document.createElement("button");
    confirm.type = "submit";
    confirm.className = "danger";
    confirm.dataset.confirmRefund = order.id;
    confirm.textContent = "Yes, refund";
    const cancel = button("Cancel", { cancelRefund: order.id }, () => {
      confirmRow.remove();
      ask.disabled = false;
      ask.focus();
    }, "link");
    form.append(question, label, input, confirm, cancel);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      requestRefund(order, input.value.trim(), form);
    });
    cellEl.append(form);
    confirmRow.append(cellEl);
    row.after(confirmRow);
    ask.disabled = true;
    confirm.focus();
  }

  async function requestRefund(order, reason, form) {
    clearNotices();
    for (const control of form.elements) control.disabled = true;
    try {
      const json = await api("POST", "/payments/purchases/" + encodeURIComponent(order.id) + "/refund-request",
        reason ? { reason } : undefined);
      const result = (json.data && json.data.purchase) || {};
      showMessage((json.message || "Refund requested.")
        + (result.status ? " The purchase is now " + (ORDER_STATUS_TEXT[result.status] || result.status) + "." : ""));
      $("message").dataset.refundOf = order.id;
      await loadOrders();
    } catch (err) {
      for (const control of form.elements) control.disabled = false;
      showError(err);
      // The window may have closed, or someone refunded meanwhile: show the orders as they are.
      if (err.status === 409 || err.status === 404) await loadOrders();
    }
  }

  // ---- revenue (instructors and admins) ----
  const REVENUE_AMOUNTS = [
    ["grossCents", "gross"],
    ["discountCents", "discounts"],
    ["taxCents", "tax"],
    ["paidCents", "paid"],
    ["refundCents", "refunds"],
    ["disputesLostCents", "disputes-lost"],
    ["netCents", "net"],
  ];

  // The report's path with the form's period (and instructor, for admins).
  function revenuePath(format) {
    const params = new URLSearchParams();
    const from = $("revenue-from").value;
    const to = $("revenue-to").value;
    const instructor = isAdmin() ? $("revenue-instructor").value.trim() : "";
    if (from) params.set("from", from);
    if (to) params.set("to", to);
    if (instructor) params.set("instructorId", instructor);
    if (format) params.set("format", format);
    const query = params.toString();
    return "/instructor/revenue" + (query ? "?" + query : "");
  }

  async function loadRevenue() {
    const body = $("revenue-lines").tBodies[0];
    const foot = $("revenue-lines").tFoot;
    const submit = $("revenue-submit");
    submit.disabled = true;
    try {
      const json = await api("GET", revenuePath());
      const data = json.data || {};
      const lines = Array.isArray(data.lines) ? data.lines : [];
      const totals = Array.isArray(data.totals) ? data.totals : [];
      body.replaceChildren(...lines.map(revenueRow));
      foot.replaceChildren(...totals.map(revenueTotalRow));
      $("revenue-empty").hidden = lines.length > 0;
      showTable("revenue-lines", lines.length > 0);
      $("revenue-period").textContent = "Sales from " + (data.from ? when(data.from) : "the first one")
        + " to " + (data.to ? "before " + when(data.to) : "now") + ".";
      $("revenue").dataset.loaded = "true";
    } catch (err) {
      showError(err);
    } finally {
      submit.disabled = false;
    }
  }

  function revenueAmounts(row, figures) {
    row.dataset.currency = String(figures.currency || "").toUpperCase();
    row.append(cell(row.dataset.currency, "currency"), cell(figures.purchases, "purchases"));
    for (const [field, name] of REVENUE_AMOUNTS) {
      row.append(cell(formatMoney(figures[field], figures.currency), "money " + name));
    }
    return row;
  }

  function revenueRow(line) {
    const row = document.createElement("tr");
    row.dataset.courseId = line.courseId;
    const course = document.createElement("th");
    course.scope = "row";
    course.textContent = line.courseTitle;
    row.append(course);
    return revenueAmounts(row, line);
  }

  function revenueTotalRow(total) {
    const row = document.createElement("tr");
    row.className = "total";
    const label = document.createElement("th");
    label.scope = "row";
    label.textContent = "Total";
    row.append(label);
    return revenueAmounts(row, total);
  }

  // The CSV needs the session's bearer token, which a plain link cannot send: fetch it and
  // hand the browser the bytes as a download.
  async function downloadRevenueCsv() {
    clearNotices();
    const trigger = $("revenue-csv");
    trigger.disabled = true;
    try {
      const { response, token } = await send("GET", revenuePath("csv"), undefined, "text/csv");
      if (!response.ok) {
        let json = null;
        try { json = await response.json(); } catch (_) { json = null; }
        throw failure(response, json, token);
      }
      const blob = await response.blob();
      const name = attachmentName(response.headers.get("Content-Disposition")) || "revenue.csv";
      const url = URL.createObjectURL(blob);
      const link = document.createElement("a");
      link.href = url;
      link.download = name;
      link.hidden = true;
      document.body.append(link);
      link.click();
      link.remove();
      // The download has its bytes once it started; the URL only needs to outlive the click.
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      showMessage("Downloaded " + name + ".");
      $("message").dataset.download = name;
    } catch (err) {
      showError(err);
    } finally {
      trigger.disabled = false;
    }
  }

  // `attachment; filename="revenue.csv"` -> `revenue.csv` (a plain name only).
  function attachmentName(disposition) {
    const match = /filename="?([A-Za-z0-9._-]+)"?/.exec(disposition || "");
    return match ? match[1] : null;
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
    $("ops-refresh").addEventListener("click", () => { clearNotices(); loadOperations(); });
    $("event-detail-close").addEventListener("click", () => { $("event-detail").hidden = true; });
    $("audit-newer").addEventListener("click", () => loadAudit(Math.max(1, auditPage - 1)));
    $("audit-older").addEventListener("click", () => loadAudit(auditPage + 1));
    $("orders-refresh").addEventListener("click", () => { clearNotices(); loadOrders(); });
    $("orders-newer").addEventListener("click", () => loadOrders(Math.max(1, ordersPage - 1)));
    $("orders-older").addEventListener("click", () => loadOrders(ordersPage + 1));
    $("revenue-form").addEventListener("submit", (event) => {
      event.preventDefault();
      clearNotices();
      loadRevenue();
    });
    $("revenue-csv").addEventListener("click", downloadRevenueCsv);
    renderSession();
    await refreshProfile();
    if (pageName() === "store") {
      await Promise.all([loadCatalogue(), loadPage()]);
    } else {
      await loadPage();
    }
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
