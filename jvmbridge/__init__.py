"""How Python talks to a JVM: JDK discovery, attach, hsperfdata, unified logging, JPype, py4j."""
