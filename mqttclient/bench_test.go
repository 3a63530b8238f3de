package mqttclient

import (
	"bytes"
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/gorilla/websocket"
)

// BenchmarkReceive measures receiving PUBLISHes through a Conn: WebSocket
// framing, MQTT decoding, dispatch to the Handler and, for QoS 1, the
// PUBACK. The peer is a scripted broker that writes pre-encoded packets, so
// that the broker's own cost stays out of the numbers.
func BenchmarkReceive(b *testing.B) {
	for _, qos := range []byte{0, 1} {
		b.Run("qos"+strconv.Itoa(int(qos)), func(b *testing.B) {
			benchmarkReceive(b, qos, 512)
		})
	}
}

func benchmarkReceive(b *testing.B, qos byte, size int) {
	start := make(chan int) // number of messages to send
	u := fakeBroker(b, func(ws *websocket.Conn) {
		sc := newWSConn(ws, nil)
		if _, err := packets.ReadPacket(sc); err != nil { // CONNECT
			return
		}
		connack := packets.NewControlPacket(packets.Connack).(*packets.ConnackPacket)
		if err := connack.Write(sc); err != nil {
			return
		}
		cp, err := packets.ReadPacket(sc)
		if err != nil {
			return
		}
		sub := cp.(*packets.SubscribePacket)
		suback := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
		suback.MessageID = sub.MessageID
		suback.ReturnCodes = []byte{qos}
		if err := suback.Write(sc); err != nil {
			return
		}
		drained := make(chan struct{})
		defer func() { <-drained }() // keep the connection until the client leaves
		go func() {                  // drain PUBACKs and the final DISCONNECT
			defer close(drained)
			for {
				if _, err := packets.ReadPacket(sc); err != nil {
					return
				}
			}
		}()
		// Pre-encode one packet per message ID in use.
		frames := make([][]byte, 1024)
		for i := range frames {
			pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
			pub.TopicName = "s/b/b1te1/fixture/r/e"
			pub.Qos = qos
			pub.MessageID = uint16(i + 1)
			pub.Payload = bytes.Repeat([]byte{'x'}, size)
			var buf bytes.Buffer
			_ = pub.Write(&buf)
			frames[i] = buf.Bytes()
		}
		n, ok := <-start
		if !ok {
			return
		}
		for i := range n {
			if err := ws.WriteMessage(websocket.BinaryMessage, frames[i%len(frames)]); err != nil {
				return
			}
		}
	})

	var got atomic.Int64
	all := make(chan struct{})
	want := int64(b.N)
	c, err := Dial(context.Background(), Options{URL: u, ClientID: "bench", Topics: []string{"s/b/b1te1/fixture/r/e"}, QoS: qos,
		Handler: func(m Message) {
			if got.Add(1) == want {
				close(all)
			}
		}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start <- b.N
	select {
	case <-all:
	case <-c.Done():
		b.Fatalf("connection ended: %v", c.Err())
	}
	b.StopTimer()
}
