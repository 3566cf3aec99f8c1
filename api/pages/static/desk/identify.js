// The live identify page: frames go over the WebSocket /desk/stream one at a time (the next when the previous is
// answered, at most MAX_FPS a second); each answer's faces are boxed on the preview with name, confidence and
// apparent expression. The page keeps its own rate and delay figures (window.deskStats).
import { COLORS, drawBoxes, grabFrame, signInLink, startCamera } from "./desk.js";

const MAX_FPS = 8;
const RECONNECT_MS = 2000;
const WINDOW_MS = 5000; // the rate shown is over the last few seconds

const video = document.getElementById("preview");
const overlay = document.getElementById("overlay");
const status = document.getElementById("status");
const faceList = document.getElementById("faces");
const pauseButton = document.getElementById("pause");
const rate = document.getElementById("rate");

// answers: times (ms) of answers in the last WINDOW_MS; delays: frame grabbed -> its boxes painted (ms).
const stats = { answered: 0, answers: [], delays: [], serverMs: [] };
window.deskStats = stats;

let socket = null;
let inFlight = null; // the frame sent and not yet answered
let paused = false;
let everOpened = false;

function label(face) {
  const nearest = face.candidates[0];
  const confidence = face.match ? face.match.confidence : nearest && nearest.confidence;
  const name = face.match ? face.match.display_name : face.decision;
  const parts = [name];
  if (confidence !== null && confidence !== undefined) parts.push(confidence.toFixed(3));
  parts.push(face.apparent_expression.dominant_emotion);
  return parts.join(" · ");
}

function showFaces(reply) {
  drawBoxes(
    overlay,
    inFlight,
    reply.faces.map((face) => ({ box: face.box, label: label(face), color: COLORS[face.decision] })),
  );
  faceList.replaceChildren(
    ...reply.faces.map((face) => {
      const item = document.createElement("li");
      const tag = document.createElement("span");
      tag.className = `tag ${face.decision}`;
      tag.textContent = face.decision;
      item.append(tag, ` ${label(face)}`);
      item.dataset.decision = face.decision;
      return item;
    }),
  );
  if (!reply.faces.length) {
    const item = document.createElement("li");
    item.className = "muted";
    item.textContent = "No face in view.";
    faceList.replaceChildren(item);
  }
}

function keepStats(grabbedAt, serverMs) {
  // The boxes are painted at the next animation frame: measure up to then.
  requestAnimationFrame(() => {
    const now = performance.now();
    stats.answered += 1;
    stats.answers.push(now);
    while (stats.answers[0] < now - WINDOW_MS) stats.answers.shift();
    stats.delays.push(now - grabbedAt);
    stats.serverMs.push(serverMs);
    const recent = stats.delays.slice(-20);
    const delay = recent.reduce((a, b) => a + b, 0) / recent.length;
    const fps = (stats.answers.length - 1) / (Math.max(now - stats.answers[0], 1) / 1000);
    rate.textContent = `${fps.toFixed(1)} frames/s · ${delay.toFixed(0)} ms from frame to box`;
  });
}

async function sendFrame() {
  if (paused || inFlight || !socket || socket.readyState !== WebSocket.OPEN) return;
  const grabbedAt = performance.now();
  inFlight = { grabbedAt }; // held before the JPEG is ready, so no second frame starts meanwhile
  try {
    Object.assign(inFlight, await grabFrame(video));
    socket.send(inFlight.blob);
  } catch (error) {
    status.textContent = `No frame from the camera: ${error.message}`;
    inFlight = null;
    setTimeout(sendFrame, RECONNECT_MS);
  }
}

function onAnswer(event) {
  const reply = JSON.parse(event.data);
  const frame = inFlight;
  if (!frame) return; // an answer from before a reconnect
  if (reply.error) {
    status.textContent = `Frame refused: ${reply.error.message}`;
  } else {
    status.textContent = `Identifying against ${reply.gallery_size} member(s).`;
    showFaces(reply);
    keepStats(frame.grabbedAt, reply.elapsed_ms);
  }
  inFlight = null;
  const wait = Math.max(0, 1000 / MAX_FPS - (performance.now() - frame.grabbedAt));
  setTimeout(sendFrame, wait);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/desk/stream`);
  socket.addEventListener("open", () => {
    everOpened = true;
    status.textContent = "Connected.";
    sendFrame();
  });
  socket.addEventListener("message", onAnswer);
  socket.addEventListener("close", () => {
    inFlight = null;
    if (!everOpened) {
      // The handshake was refused: most likely the sign-in expired.
      status.replaceChildren(signInLink("Could not connect."));
      return;
    }
    status.textContent = "Connection lost; reconnecting…";
    everOpened = false;
    setTimeout(connect, RECONNECT_MS);
  });
}

pauseButton.addEventListener("click", () => {
  paused = !paused;
  pauseButton.textContent = paused ? "Resume" : "Pause";
  status.textContent = paused ? "Paused: no frames are sent." : "Resumed.";
  if (!paused) sendFrame();
});

startCamera(video)
  .then(connect)
  .catch((error) => {
    status.textContent = `The camera could not start: ${error.message}`;
  });
