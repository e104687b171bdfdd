{
  "targets": [
    {
      "target_name": "hostlink_channel",
      "sources": ["hostlink_channel.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=c11"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
