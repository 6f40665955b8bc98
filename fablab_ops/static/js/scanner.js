/*
 * The technician's door scanner.
 *
 * Codes arrive three ways: the camera (BarcodeDetector where the browser has it,
 * otherwise the bundled jsQR decoder), a USB/Bluetooth scanner that "types" the
 * code followed by Enter into the focused field, or a person typing it. All three
 * end in submitToken(), which posts to the check-in API and shows the verdict.
 */
(function () {
  "use strict";

  const root = document.getElementById("scanner");
  if (!root) return;

  const endpoint = root.dataset.endpoint;
  const lab = root.dataset.lab;
  const csrfToken = root.dataset.csrf;
  const form = document.getElementById("scan-form");
  const input = document.getElementById("scan-token");
  const result = document.getElementById("scan-result");
  const video = document.getElementById("scan-video");
  const cameraButton = document.getElementById("scan-camera");
  const canvas = document.createElement("canvas");
  // The same code seen by the camera on consecutive frames is one scan, not many.
  const REPEAT_MS = 4000;
  let lastToken = "";
  let lastAt = 0;
  let busy = false;

  function show(verdict) {
    result.hidden = false;
    result.className = "scan-result " + verdict.tone;
    result.querySelector(".scan-title").textContent = verdict.title;
    result.querySelector(".scan-person").textContent = verdict.person || "";
    result.querySelector(".scan-what").textContent = verdict.what || "";
    result.querySelector(".scan-reason").textContent = verdict.message || "";
    result.dataset.outcome = verdict.outcome || "";
    result.focus();
  }

  async function submitToken(token, fromCamera) {
    token = (token || "").trim();
    if (!token || busy) return;
    const now = Date.now();
    if (fromCamera && token === lastToken && now - lastAt < REPEAT_MS) return;
    lastToken = token;
    lastAt = now;
    busy = true;
    try {
      const response = await fetch(endpoint, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
        body: JSON.stringify({ token: token, lab: lab }),
      });
      const body = await response.json().catch(() => ({}));
      const tone = { checked_in: "ok", already_checked_in: "warn" }[body.outcome] || "refused";
      show({
        tone: tone,
        outcome: body.outcome || body.code,
        title: body.title || body.message || root.dataset.errorText,
        person: body.person,
        what: body.what,
        message: tone === "ok" || body.message === body.title ? "" : body.message,
      });
      if (response.ok) refreshDoorList();
    } catch (error) {
      // The request never got an answer: say so in the page's words, not the browser's.
      show({ tone: "refused", title: root.dataset.errorText, message: root.dataset.networkErrorText });
    } finally {
      busy = false;
      input.value = "";
      input.focus();
    }
  }

  // Who is in: re-read today's list from the page itself after every accepted scan.
  async function refreshDoorList() {
    const section = document.getElementById("door-section");
    if (!section) return;
    const page = await fetch(window.location.pathname, { credentials: "same-origin" });
    const fresh = new DOMParser().parseFromString(await page.text(), "text/html").getElementById("door-section");
    if (fresh) section.replaceWith(fresh);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submitToken(input.value);
  });

  async function detectorFor() {
    if ("BarcodeDetector" in window) {
      try {
        const formats = await window.BarcodeDetector.getSupportedFormats();
        if (formats.includes("qr_code")) {
          const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
          return async (source) => {
            const codes = await detector.detect(source);
            return codes.length ? codes[0].rawValue : null;
          };
        }
      } catch (error) { /* fall back to jsQR below */ }
    }
    return async (source) => {
      canvas.width = source.videoWidth;
      canvas.height = source.videoHeight;
      const context = canvas.getContext("2d", { willReadFrequently: true });
      context.drawImage(source, 0, 0, canvas.width, canvas.height);
      const image = context.getImageData(0, 0, canvas.width, canvas.height);
      const code = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
      return code ? code.data : null;
    };
  }

  async function startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      cameraButton.disabled = true;
      throw { name: "Unavailable" };
    }
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    cameraButton.hidden = true;
    const detect = await detectorFor();
    async function tick() {
      if (video.readyState >= 2 && !busy) {
        const token = await detect(video).catch(() => null);
        if (token) await submitToken(token, true);
      }
      requestAnimationFrame(tick);
    }
    requestAnimationFrame(tick);
  }

  // Why the camera did not open, and what to do instead, in the page's language (data-camera-* on #scanner).
  const CAMERA_PROBLEMS = {
    NotFoundError: "cameraMissingText", OverconstrainedError: "cameraMissingText", DevicesNotFoundError: "cameraMissingText",
    NotAllowedError: "cameraDeniedText", PermissionDeniedError: "cameraDeniedText", SecurityError: "cameraDeniedText",
    NotReadableError: "cameraBusyText", TrackStartError: "cameraBusyText", AbortError: "cameraBusyText",
    Unavailable: "cameraUnavailableText",
  };

  function cameraProblem(error) {
    const key = CAMERA_PROBLEMS[(error && error.name) || ""] || "cameraOtherText";
    return root.dataset[key];
  }

  if (cameraButton) {
    cameraButton.addEventListener("click", function () {
      startCamera().catch(function (error) {
        video.hidden = true;
        show({ tone: "refused", outcome: "camera", title: root.dataset.cameraErrorText, message: cameraProblem(error) });
      });
    });
  }

  // A hardware scanner types into whatever has focus: keep it on the field.
  input.focus();
  document.addEventListener("click", function (event) {
    if (!event.target.closest("a, button, input, select, textarea, summary")) input.focus();
  });
  // A ?token= in the address (e.g. a scanner app that opens a URL) is scanned at once.
  const fromUrl = new URLSearchParams(window.location.search).get("token");
  if (fromUrl) submitToken(fromUrl);
})();
