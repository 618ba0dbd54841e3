// `amb reduce examples/add.js` gives 5; `amb compile --emit roam examples/add.js`
// shows the generated program; `amb deploy examples/add.js --node URL
// --delegate add=PEER` runs `add` on another peer.
const add = (a, b) => a + b;
add(2, 3)
