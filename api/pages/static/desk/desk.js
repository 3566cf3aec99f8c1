// What both desk pages share: the camera, grabbing a frame, drawing boxes over the preview, and calls to the
// server with the session's CSRF token.

// Frames are sent at most this wide: faces at a desk are large, and a smaller JPEG is quicker to send and decode.
const MAX_FRAME_WIDTH = 640;

// Browsers give a camera only to a secure page: https://, or the server's own computer as localhost. Opened as
// http://gym-server:8000 from another computer, navigator.mediaDevices is simply missing.
export function insecurePageExplanation() {
  if (window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) return null;
  const secure = `https://${location.host}${location.pathname}`;
  return (
    "The camera is blocked because this page is not secure. Browsers let only secure pages (https://) use a " +
    `camera. Open ${secure} instead; the server must be started with a certificate ` +
    '(README: "HTTPS on a LAN").'
  );
}

// A camera that could not start, in words a receptionist can act on.
export function cameraProblem(error) {
  if (error.name === "InsecurePage") return error.message;
  const words = {
    NotAllowedError: "The browser was not allowed to use the camera: allow it (the camera icon in the address bar), then reload the page.",
    NotFoundError: "No camera was found: plug one in, then reload the page.",
    NotReadableError: "The camera is in use by another program: close it, then reload the page.",
    OverconstrainedError: "The camera cannot give a picture of the size asked for: try another camera.",
  };
  return words[error.name] || `The camera could not start: ${error.message}`;
}

export async function startCamera(video) {
  const insecure = insecurePageExplanation();
  if (insecure) throw Object.assign(new Error(insecure), { name: "InsecurePage" });
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 640 }, height: { ideal: 480 } },
    audio: false,
  });
  video.srcObject = stream;
  await video.play();
  if (!video.videoWidth) {
    await new Promise((resolve) => video.addEventListener("loadedmetadata", resolve, { once: true }));
  }
  return stream;
}

// The current video frame as a JPEG, with the size it was sent at (boxes come back in those pixels).
export function grabFrame(video) {
  const scale = Math.min(1, MAX_FRAME_WIDTH / video.videoWidth);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve, reject) => {
    canvas.toBlob(
      (blob) => (blob ? resolve({ blob, width: canvas.width, height: canvas.height }) : reject(new Error("no frame"))),
      "image/jpeg",
      0.85,
    );
  });
}

const LABEL_HEIGHT = 22;
const LABEL_PADDING = 5;

function overlaps(a, b) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

// Where each label goes: above its box if there is room, else below it, else the nearest free row down the
// overlay; never over another label and never off the overlay's sides. `widths` are the labels' text widths.
export function placeLabels(rects, widths, overlayWidth, overlayHeight) {
  const placed = [];
  rects.forEach((rect, i) => {
    const width = widths[i] + 2 * LABEL_PADDING;
    const x = Math.min(Math.max(rect.x, 0), Math.max(overlayWidth - width, 0));
    const rows = [rect.y - LABEL_HEIGHT, rect.y + rect.height];
    for (let y = 0; y + LABEL_HEIGHT <= overlayHeight; y += 4) rows.push(y);
    const fits = (y) =>
      y >= 0 &&
      y + LABEL_HEIGHT <= overlayHeight &&
      !placed.some((other) => overlaps({ x, y, width, height: LABEL_HEIGHT }, other));
    // The first two rows (above, below) are preferred; past them, the free row nearest the box.
    const free = rows.slice(0, 2).find(fits) ?? rows.slice(2).filter(fits).sort((a, b) => Math.abs(a - rect.y) - Math.abs(b - rect.y))[0];
    placed.push({ x, y: free ?? Math.max(rect.y - LABEL_HEIGHT, 0), width, height: LABEL_HEIGHT });
  });
  return placed;
}

// Boxes ({box: {x, y, width, height}, label, color}) in the sent frame's pixels, drawn over the preview with their
// labels placed apart (placeLabels). Returns the labels' rectangles in the overlay's pixels.
export function drawBoxes(overlay, frame, boxes) {
  overlay.width = overlay.clientWidth;
  overlay.height = overlay.clientHeight;
  const context = overlay.getContext("2d");
  context.clearRect(0, 0, overlay.width, overlay.height);
  const sx = overlay.width / frame.width;
  const sy = overlay.height / frame.height;
  context.lineWidth = 3;
  context.font = "600 15px system-ui, sans-serif";
  context.textBaseline = "middle";
  const rects = boxes.map(({ box }) => ({ x: box.x * sx, y: box.y * sy, width: box.width * sx, height: box.height * sy }));
  rects.forEach((rect, i) => {
    context.strokeStyle = boxes[i].color;
    context.strokeRect(rect.x, rect.y, rect.width, rect.height);
  });
  const labelled = boxes.map((box, i) => ({ ...box, rect: rects[i] })).filter((box) => box.label);
  const labels = placeLabels(
    labelled.map((box) => box.rect),
    labelled.map((box) => context.measureText(box.label).width),
    overlay.width,
    overlay.height,
  );
  labelled.forEach(({ label, color }, i) => {
    const at = labels[i];
    context.fillStyle = color;
    context.fillRect(at.x, at.y, at.width, at.height);
    context.fillStyle = "#fff";
    context.fillText(label, at.x + LABEL_PADDING, at.y + LABEL_HEIGHT / 2);
  });
  return labels;
}

export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

// POST a form to a desk route; resolves to {status, body} with the JSON body ({error: {...}} on failure).
export async function postForm(url, form) {
  const response = await fetch(url, {
    method: "POST",
    body: form,
    headers: { "X-CSRF-Token": csrfToken() },
    credentials: "same-origin",
  });
  let body;
  try {
    body = await response.json();
  } catch {
    body = { error: { code: "http_error", message: `The server answered ${response.status}.` } };
  }
  return { status: response.status, body };
}

export function signInLink(message) {
  const paragraph = document.createElement("span");
  paragraph.textContent = `${message} `;
  const link = document.createElement("a");
  link.href = "/desk/login";
  link.textContent = "Sign in again";
  paragraph.append(link);
  return paragraph;
}

// Calm colours: a member at the desk is good news, a stranger is a question (ask for the card), not an alarm.
export const COLORS = { good: "#2f7d5b", warn: "#b7791f", match: "#2f7d5b", review: "#3b5b9a", unknown: "#6b6f76" };
