{
  "targets": [
    {
      "target_name": "hostlink_channel",
      "sources": ["hostlink_channel.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=c11"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "hostlink_sandbox",
      "sources": ["hostlink_sandbox.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11", "-pthread"],
      "ldflags": ["-pthread"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "hostlink-launch",
      "type": "executable",
      "sources": ["hostlink_launch.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    },
    {
      "target_name": "hostlink_socket",
      "sources": ["hostlink_socket.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "hostlink_state",
      "sources": ["hostlink_state.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=c11"],
      "ldflags": ["-Wl,-z,now"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
