// The live identify page: frames go over the WebSocket /desk/stream one at a time (the next when the previous is
// answered, at most MAX_FPS a second); each answer's faces are boxed on the preview and listed in a receptionist's
// words ("Welcome, Ada", "Not recognised: ask for the member card", "Checking: a manager will confirm") with what
// to do next: check a recognised member in, or check in by the member card. No scores; the apparent expression
// only when FACEGATE_DESK_SHOW_EXPRESSION is on. The page keeps its own rate and delay figures (window.deskStats)
// and the label rectangles it drew (window.deskLabels), and what each track showed (window.deskTracks: the stream
// follows a person passing as one track; its decisions in the order shown, and the most frames it was seen on).
import { COLORS, cameraProblem, drawBoxes, grabFrame, postForm, signInLink, startCamera } from "./desk.js";

const MAX_FPS = 8;
const RECONNECT_MS = 2000;
const WINDOW_MS = 5000; // the rate shown is over the last few seconds

const video = document.getElementById("preview");
const overlay = document.getElementById("overlay");
const status = document.getElementById("status");
const faceList = document.getElementById("faces");
const pauseButton = document.getElementById("pause");
const rate = document.getElementById("rate");
const cardForm = document.getElementById("card");
const checkInResult = document.getElementById("checkin-result");
const showExpression = faceList.dataset.showExpression === "true";

// answers: times (ms) of answers in the last WINDOW_MS; delays: frame grabbed -> its boxes painted (ms).
const stats = { answered: 0, answers: [], delays: [], serverMs: [] };
window.deskStats = stats;
window.deskLabels = [];
window.deskTracks = {};

let socket = null;
let inFlight = null; // the frame sent and not yet answered
let paused = false;
let everOpened = false;
const checkedIn = new Map(); // member id -> the time they were checked in on this page

const WORDS = {
  unknown: { title: () => "Not recognised: ask for the member card", label: () => "Not recognised" },
  review: { title: () => "Checking: a manager will confirm", label: () => "Checking…" },
  match: { title: (face) => `Welcome, ${face.match.display_name}`, label: (face) => face.match.display_name },
};
const NEXT_STEP = {
  unknown: "Not a member we know. Ask for the member card and check them in by its number below, or sign them up.",
  review:
    "The photo is queued for a manager to confirm who it is. Meanwhile ask for the member card and check them " +
    "in by its number below.",
};

function withExpression(text, face) {
  return showExpression ? `${text} · ${face.apparent_expression.dominant_emotion}` : text;
}

function clockTime(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

async function checkIn(face, item) {
  const data = new FormData();
  data.append("member_id", face.match.member_id);
  const { status: code, body } = await postForm("/desk/checkins", data);
  if (code === 401) {
    checkInResult.replaceChildren(signInLink("Signed out: not checked in."));
    return;
  }
  if (code !== 201) {
    checkInResult.textContent = `Not checked in: ${body.error.message}`;
    return;
  }
  checkedIn.set(face.match.member_id, new Date(body.checked_in_at));
  checkInResult.textContent = `Checked in: ${body.member.display_name}.`;
  fillItem(item, face);
  item.querySelector(".next").focus();
}

// One face's entry: its words, and its next step (a check-in button for a member).
function fillItem(item, face) {
  const title = withExpression(WORDS[face.decision].title(face), face);
  item.dataset.decision = face.decision;
  item.querySelector(".words").textContent = title;
  const next = item.querySelector(".next");
  if (face.decision !== "match") {
    if (next.tagName !== "P") next.replaceWith(Object.assign(document.createElement("p"), { className: "next" }));
    item.querySelector(".next").textContent = NEXT_STEP[face.decision];
    return;
  }
  const memberId = face.match.member_id;
  if (checkedIn.has(memberId)) {
    const done = Object.assign(document.createElement("p"), { className: "next", tabIndex: -1 });
    done.textContent = `Checked in at ${clockTime(checkedIn.get(memberId))}.`;
    next.replaceWith(done);
    return;
  }
  if (next.tagName === "BUTTON" && next.dataset.member === memberId) return; // keep it, and the focus on it
  const button = Object.assign(document.createElement("button"), { type: "button", className: "next" });
  button.dataset.member = memberId;
  button.textContent = `Check in ${face.match.display_name}`;
  button.addEventListener("click", () => checkIn(face, item));
  next.replaceWith(button);
}

function keepTracks(faces) {
  for (const face of faces) {
    const track = (window.deskTracks[face.track_id] ||= { decisions: [], frames: 0 });
    if (track.decisions.at(-1) !== face.decision) track.decisions.push(face.decision);
    track.frames = Math.max(track.frames, face.track_frames);
  }
}

function showFaces(reply) {
  keepTracks(reply.faces);
  window.deskLabels = drawBoxes(
    overlay,
    inFlight,
    reply.faces.map((face) => ({
      box: face.box,
      label: withExpression(WORDS[face.decision].label(face), face),
      color: COLORS[face.decision],
    })),
  );
  if (!reply.faces.length) {
    const item = document.createElement("li");
    item.className = "muted";
    item.textContent = "No face in view.";
    faceList.replaceChildren(item);
    return;
  }
  // Entries are updated in place, so a button being pressed or focused is not replaced under the finger.
  const previous = new Map([...faceList.children].map((item) => [item.dataset.key, item]));
  faceList.replaceChildren(
    ...reply.faces.map((face) => {
      const key = `track-${face.track_id}`; // the same person passing keeps the same entry
      let item = previous.get(key);
      if (!item) {
        item = document.createElement("li");
        item.dataset.key = key;
        item.append(
          Object.assign(document.createElement("strong"), { className: "words" }),
          Object.assign(document.createElement("p"), { className: "next" }),
        );
      }
      fillItem(item, face);
      return item;
    }),
  );
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
    status.textContent = `No picture from the camera: ${error.message}`;
    inFlight = null;
    setTimeout(sendFrame, RECONNECT_MS);
  }
}

function onAnswer(event) {
  const reply = JSON.parse(event.data);
  const frame = inFlight;
  if (!frame) return; // an answer from before a reconnect
  if (reply.error) {
    status.textContent = `The picture could not be checked: ${reply.error.message}`;
  } else {
    if (status.textContent !== "Watching the camera.") status.textContent = "Watching the camera.";
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
  status.textContent = paused ? "Paused: no pictures are sent." : "Resumed.";
  if (!paused) sendFrame();
});

cardForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const { status: code, body } = await postForm("/desk/checkins", new FormData(cardForm));
  if (code === 401) {
    checkInResult.replaceChildren(signInLink("Signed out: not checked in."));
  } else if (code === 201) {
    checkedIn.set(body.member.id, new Date(body.checked_in_at)); // their face, if in view, shows it too
    checkInResult.textContent = `Checked in by card: ${body.member.display_name} (${body.member.external_id}).`;
    cardForm.reset();
  } else if (body.error.code === "member_not_found") {
    checkInResult.textContent = "No member has that card number: check it, or sign them up.";
  } else {
    checkInResult.textContent = `Not checked in: ${body.error.message}`;
  }
});

startCamera(video)
  .then(connect)
  .catch((error) => {
    status.textContent = cameraProblem(error);
    status.dataset.problem = error.name;
  });
