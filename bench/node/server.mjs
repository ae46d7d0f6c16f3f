// Baseline (b): y-websocket's server (@y/websocket-server 0.1.1), started by bench/.
// The same as its own bin script, bound to 127.0.0.1 and printing when ready.
import http from 'node:http'
import WebSocket from 'ws'
import { setupWSConnection } from '@y/websocket-server/utils'

const host = process.env.HOST || '127.0.0.1'
const port = Number(process.env.PORT || 1234)
const wss = new WebSocket.Server({ noServer: true })
const server = http.createServer((_req, res) => { res.writeHead(200); res.end('okay') })
wss.on('connection', setupWSConnection)
server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
})
server.listen(port, host, () => console.log(`running at '${host}' on port ${port}`))
