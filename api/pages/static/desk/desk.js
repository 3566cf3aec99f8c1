// What both desk pages share: the camera, grabbing a frame, drawing boxes over the preview, and calls to the
// server with the session's CSRF token.

// Frames are sent at most this wide: faces at a desk are large, and a smaller JPEG is quicker to send and decode.
const MAX_FRAME_WIDTH = 640;

export async function startCamera(video) {
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

// Boxes ({box: {x, y, width, height}, label, color}) in the sent frame's pixels, drawn over the preview.
export function drawBoxes(overlay, frame, boxes) {
  overlay.width = overlay.clientWidth;
  overlay.height = overlay.clientHeight;
  const context = overlay.getContext("2d");
  context.clearRect(0, 0, overlay.width, overlay.height);
  const sx = overlay.width / frame.width;
  const sy = overlay.height / frame.height;
  context.lineWidth = 3;
  context.font = "600 15px system-ui, sans-serif";
  context.textBaseline = "bottom";
  for (const { box, label, color } of boxes) {
    const x = box.x * sx;
    const y = box.y * sy;
    context.strokeStyle = color;
    context.strokeRect(x, y, box.width * sx, box.height * sy);
    if (label) {
      const textWidth = context.measureText(label).width;
      const top = Math.max(y, 22);
      context.fillStyle = color;
      context.fillRect(x - 1.5, top - 22, textWidth + 10, 22);
      context.fillStyle = "#fff";
      context.fillText(label, x + 4, top - 3);
    }
  }
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

export const COLORS = { good: "#1f9d55", warn: "#d97706", match: "#1f9d55", review: "#2a5bd7", unknown: "#c0392b" };
