"""All atoms as one GL item of ray-cast sphere impostors.

Each atom is one camera-facing square (4 vertices, 2 triangles) and the
fragment shader casts the eye ray onto the exact sphere: it discards pixels
that miss, shades with the true normal and writes the true depth, so spheres
intersect correctly. A 20,000-atom crystal is 80,000 vertices instead of the
840,000 vertices and 1.6 million triangles of instanced icospheres, which a
software renderer (Mesa llvmpipe) cannot draw interactively.

The item is a :class:`~pyqtgraph.opengl.GLMeshItem`, so pyqtgraph's vertex
buffers, GL options and the ``u_mvp``/``u_normal`` uniforms are reused; the
per-vertex normal attribute carries (corner x, corner y, radius) instead of a
normal, and the eye position and camera up vector are set per frame.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph.opengl as gl
from pyqtgraph.opengl import shaders
from PySide6.QtGui import QVector3D

#: Corners of the square of each atom, in units of its radius.
CORNERS = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]], dtype=np.float32)

_VERTEX = """
uniform mat4 u_mvp;
uniform float u_eye[3];
uniform float u_up[3];
attribute vec4 a_position;  // sphere centre (model coordinates)
attribute vec3 a_normal;    // (corner x, corner y, radius)
attribute vec4 a_color;
varying vec4 v_color;
varying vec3 v_point;
varying vec3 v_center;
varying float v_radius;
void main() {
    vec3 eye = vec3(u_eye[0], u_eye[1], u_eye[2]);
    vec3 center = a_position.xyz;
    float radius = a_normal.z;
    vec3 to_eye = normalize(eye - center);
    vec3 side = cross(vec3(u_up[0], u_up[1], u_up[2]), to_eye);
    if (dot(side, side) < 1e-8) side = cross(vec3(1.0, 0.0, 0.0), to_eye);
    side = normalize(side);
    vec3 top = cross(to_eye, side);
    // A square of half-size r on the tangent plane facing the eye covers the
    // sphere's silhouette (that cone's section there has radius r*sqrt((d-r)/(d+r))).
    vec3 point = center + radius * (to_eye + a_normal.x * side + a_normal.y * top);
    v_point = point;
    v_center = center;
    v_radius = radius;
    v_color = a_color;
    gl_Position = u_mvp * vec4(point, 1.0);
}
"""

_FRAGMENT = """
#ifdef GL_ES
precision highp float;
#endif
uniform mat4 u_mvp;
uniform mat3 u_normal;
uniform float u_eye[3];
varying vec4 v_color;
varying vec3 v_point;
varying vec3 v_center;
varying float v_radius;
void main() {
    vec3 eye = vec3(u_eye[0], u_eye[1], u_eye[2]);
    vec3 dir = normalize(v_point - eye);
    vec3 oc = eye - v_center;
    float b = dot(oc, dir);
    float h = b * b - dot(oc, oc) + v_radius * v_radius;
    if (h < 0.0) discard;
    vec3 hit = eye + (-b - sqrt(h)) * dir;
    // Same light as the icosphere shader had: from the viewer, with a small highlight.
    vec3 n = normalize(u_normal * ((hit - v_center) / v_radius));
    vec3 light = normalize(vec3(0.4, 0.5, 1.0));
    float diffuse = max(dot(n, light), 0.0);
    vec3 halfway = normalize(light + vec3(0.0, 0.0, 1.0));
    float specular = pow(max(dot(n, halfway), 0.0), 40.0) * 0.35;
    vec3 rgb = v_color.rgb * (0.35 + 0.65 * diffuse) + vec3(specular);
#ifndef GL_ES
    // OpenGL ES 2 has no gl_FragDepth: there the square's depth is used.
    vec4 clip = u_mvp * vec4(hit, 1.0);
    gl_FragDepth = 0.5 * (clip.z / clip.w) + 0.5;
#endif
    gl_FragColor = vec4(rgb, v_color.a);
}
"""


def impostor_shader() -> shaders.ShaderProgram:
    """The sphere-impostor program (created once; pyqtgraph compiles it per context group)."""
    name = "xanes_sphere_impostors"
    for program in shaders.Shaders:
        if program.name == name:
            return program
    program = shaders.ShaderProgram(name, [shaders.VertexShader(_VERTEX), shaders.FragmentShader(_FRAGMENT)])
    shaders.Shaders.append(program)
    return program


def impostor_quads(centers: np.ndarray, radii: np.ndarray,
                   colors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vertex data of one square per sphere.

    Args:
        centers: (N, 3) sphere centres.
        radii: (N,) radii.
        colors: (N, 4) RGBA in [0, 1].

    Returns:
        (positions (4N, 3): the centre repeated, corners (4N, 3): (x, y, radius),
        colours (4N, 4), faces (2N, 3) uint32), float32.
    """
    n = len(centers)
    positions = np.repeat(np.asarray(centers, dtype=np.float32), 4, axis=0)
    corners = np.empty((4 * n, 3), dtype=np.float32)
    corners[:, :2] = np.tile(CORNERS, (n, 1))
    corners[:, 2] = np.repeat(np.asarray(radii, dtype=np.float32), 4)
    vertex_colors = np.repeat(np.asarray(colors, dtype=np.float32), 4, axis=0)
    base = (4 * np.arange(n, dtype=np.uint32))[:, None]
    faces = np.concatenate([base + np.array([0, 1, 2], dtype=np.uint32),
                            base + np.array([0, 2, 3], dtype=np.uint32)], axis=1).reshape(-1, 3)
    return positions, corners, vertex_colors, faces


class _QuadData(gl.MeshData):
    """MeshData whose "normals" are the corner/radius attribute (pyqtgraph would compute real normals)."""

    def __init__(self, positions, faces, corners, colors) -> None:
        super().__init__(vertexes=positions, faces=faces, vertexColors=colors)
        self._corners = corners

    def vertexNormals(self, indexed=None):  # noqa: N802 - pyqtgraph API
        return self._corners[self.faces()] if indexed == "faces" else self._corners


class SphereImpostors(gl.GLMeshItem):
    """Spheres drawn as ray-cast impostors; ``glOptions`` as for any GL item."""

    def __init__(self, glOptions: str = "opaque") -> None:  # noqa: N803 - pyqtgraph's name
        super().__init__(smooth=True, shader=impostor_shader(), glOptions=glOptions)

    def set_spheres(self, centers: np.ndarray, radii: np.ndarray, colors: np.ndarray) -> None:
        """Replace all spheres (one upload of 4 vertices per sphere)."""
        positions, corners, vertex_colors, faces = impostor_quads(centers, radii, colors)
        self.setMeshData(meshdata=_QuadData(positions, faces, corners, vertex_colors))

    def paint(self) -> None:
        # The shader needs the eye and the camera's up direction in model coordinates.
        inverse, ok = self.modelViewMatrix().inverted()
        if ok:
            eye = inverse.map(QVector3D(0.0, 0.0, 0.0))
            up = inverse.mapVector(QVector3D(0.0, 1.0, 0.0))
            program = self.shader()
            program.setUniformData("u_eye", [eye.x(), eye.y(), eye.z()])
            program.setUniformData("u_up", [up.x(), up.y(), up.z()])
        super().paint()
